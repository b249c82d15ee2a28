"""Operators' requests and planned-move intents, shared by a controller cluster.

`mxctl pause|resume|ack|cancel|switchover|switchback` may run on any controller host, and
only the leader acts, wherever it runs. Alone, a controller keeps these requests in its
own journal (`kv`); in a cluster the same keys live in etcd, under
`/mxctl/<cluster>/requests/<key>`, so the leader sees them whichever host they were made
on, a new leader finds the ones its predecessor had not carried out, and the command that
asked reads the outcome the leader wrote. What happens to a request is still journaled
where it happens (the command's host, the leader's).

Only these keys are shared: a planned run's own progress (`run.planned`, its journaled
steps) stays in the journal of the controller running it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from orchestrator.cluster.etcd import EtcdClient, EtcdUnavailable, Put
from orchestrator.cluster.leadership import ClusterKeys
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.journal import Journal
from orchestrator.controller.operator import RequestStore

SHARED_KEYS = frozenset(
    {"operator.paused", "operator.ack", "intent.planned", "intent.started", "intent.result"}
)


class ClusterRequests:
    """A request store (`orchestrator.controller.operator.RequestStore`) on etcd.

    Writes are plain puts, as the journal's are: an operator's latest word wins, and the
    leader is the only one consuming (`ack`, a finished intent). Every failure to reach
    etcd raises EtcdUnavailable: a command says its request was not recorded, and a
    leader's cycle fails (it could not have acted without etcd anyway)."""

    def __init__(self, client: EtcdClient, keys: ClusterKeys, journal: Journal) -> None:
        self.client, self.keys, self.journal = client, keys, journal

    def _key(self, key: str) -> str:
        return f"/mxctl/{self.keys.cluster}/requests/{key}"

    def get(self, key: str) -> str | None:
        if key not in SHARED_KEYS:
            return self.journal.get(key)
        found = self.client.get(self._key(key))
        return found.value.decode() if found is not None else None

    def put(self, key: str, value: str) -> None:
        if key not in SHARED_KEYS:
            self.journal.put(key, value)
            return
        self.client.txn([], [Put(self._key(key), value.encode())])

    def record(
        self,
        at: datetime,
        kind: str,
        subject: str,
        status: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int:
        return self.journal.record(at, kind, subject, status, reason, evidence, run_id)


@contextlib.contextmanager
def request_store(config: MxctlConfig, journal: Journal) -> Iterator[RequestStore]:
    """Where a command puts an operator's request: the cluster's store when the config has
    `[cluster]` (the leader may be on another host), else this controller's journal."""
    if config.cluster is None:
        yield journal
        return
    client = EtcdClient(config.cluster.endpoints, tls=config.cluster.tls)
    try:
        yield ClusterRequests(client, ClusterKeys(config.cluster.name), journal)
    except EtcdUnavailable as exc:
        raise EtcdUnavailable(
            f"{exc}: the request is not recorded (the cluster's leader cannot see it); "
            "retry once etcd answers (`mxctl status` shows etcd's state)"
        ) from None
    finally:
        client.close()
