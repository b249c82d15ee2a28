"""State every controller of a cluster shares through etcd, and the observers' votes.

- `state`: the controller's state (roles, fenced set, anti-flap block, pause, the failover
  in progress) as `state_to_json` writes it;
- `run`: the run in progress with the steps completed, so a new leader resumes an
  interrupted failover at the next step;
- `observations/<controller>`: each controller's last view of the mail hosts, bound to
  its own lease (a dead controller's view disappears with it); the leader reads them as
  votes.

Every write of `state` and `run` is one transaction that compares two revisions: the
leader key's create revision must be the writer's term (a deposed leader writes nothing)
and the key's mod revision must be the one the writer read (two writers never both win).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orchestrator.cluster.etcd import Compare, EtcdClient, KeyValue, Put
from orchestrator.cluster.leadership import ClusterKeys
from orchestrator.controller.model import (
    ControllerState,
    Health,
    ObserverReport,
    state_from_json,
    state_to_json,
)
from orchestrator.errors import MxctlError


class NotLeader(MxctlError):
    """The write was refused: the leader key is no longer in the writer's term."""


class StaleRevision(MxctlError):
    """The write was refused: someone changed the key since the writer read it."""

    def __init__(self, message: str, current_revision: int) -> None:
        super().__init__(message)
        self.current_revision = current_revision


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str  # failover | switchover | switchback
    from_host: str
    to_host: str
    term: int  # the term that started it (a later term finishing it keeps this)
    completed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "from": self.from_host,
            "to": self.to_host,
            "term": self.term,
            "completed": list(self.completed),
        }

    @staticmethod
    def from_json(raw: dict[str, Any]) -> RunRecord:
        return RunRecord(
            str(raw["run_id"]), str(raw["kind"]), str(raw["from"]), str(raw["to"]),
            int(raw["term"]), tuple(str(s) for s in raw.get("completed", [])),
        )  # fmt: skip


@dataclass(frozen=True)
class Read:
    """A value as read, with the mod revision a later write must compare against (0:
    absent)."""

    value: Any
    revision: int


def report_to_json(report: ObserverReport, at: datetime) -> dict[str, Any]:
    return {
        "observer": report.observer,
        "hosts": {host: health.value for host, health in report.hosts.items()},
        "replication_lag_s": report.replication_lag_s,
        "note": report.note,
        "at": at.isoformat(),
    }


def fresh_reports(
    published: Iterable[dict[str, Any]], now: datetime, max_age_s: float
) -> tuple[ObserverReport, ...]:
    """The published observations as votes. One older than `max_age_s` counts as an
    abstention (its observer's hosts UNKNOWN, with the reason), never as a vote: a
    controller that stopped publishing must not keep voting with what it saw long ago."""
    reports = []
    for raw in sorted(published, key=lambda r: str(r.get("observer", ""))):
        at = datetime.fromisoformat(str(raw["at"]))
        age = (now - at).total_seconds()
        hosts = {str(h): Health(str(v)) for h, v in dict(raw.get("hosts", {})).items()}
        lag = raw.get("replication_lag_s")
        if age > max_age_s:
            reports.append(
                ObserverReport(
                    str(raw["observer"]),
                    dict.fromkeys(hosts, Health.UNKNOWN),
                    note=f"its last observation is {age:.0f} s old (> {max_age_s:g} s)",
                )
            )
            continue
        reports.append(
            ObserverReport(
                str(raw["observer"]),
                hosts,
                float(lag) if lag is not None else None,
                str(raw.get("note", "")),
            )
        )
    return tuple(reports)


class SharedState:
    def __init__(self, client: EtcdClient, keys: ClusterKeys) -> None:
        self.client, self.keys = client, keys

    def _read(self, key: str) -> tuple[dict[str, Any] | None, int]:
        kv = self.client.get(key)
        if kv is None:
            return None, 0
        return json.loads(kv.value), kv.mod_revision

    def _write(self, key: str, value: dict[str, Any], expected: int, term: int) -> int:
        result = self.client.txn(
            [Compare(self.keys.leader, "CREATE", term), Compare(key, "MOD", expected)],
            [Put(key, json.dumps(value, sort_keys=True).encode())],
        )
        if result.succeeded:
            return result.revision
        current = {kv.key: kv for kv in result.current}
        leader: KeyValue | None = current.get(self.keys.leader)
        if leader is None or leader.create_revision != term:
            now_term = leader.create_revision if leader else "none"
            raise NotLeader(f"{key} not written: term {term} is over (leader term {now_term})")
        found = current[key].mod_revision if key in current else 0
        raise StaleRevision(
            f"{key} not written: it changed since read (revision {found}, expected {expected})",
            found,
        )

    def read_state(self) -> Read:
        raw, revision = self._read(self.keys.state)
        return Read(state_from_json(raw) if raw is not None else None, revision)

    def write_state(self, state: ControllerState, expected: int, term: int) -> int:
        return self._write(self.keys.state, state_to_json(state), expected, term)

    def read_run(self) -> Read:
        raw, revision = self._read(self.keys.run)
        return Read(RunRecord.from_json(raw) if raw is not None else None, revision)

    def write_run(self, run: RunRecord, expected: int, term: int) -> int:
        return self._write(self.keys.run, run.to_json(), expected, term)

    def publish_observation(self, report: ObserverReport, at: datetime, lease: int) -> None:
        key = self.keys.observations + report.observer
        value = json.dumps(report_to_json(report, at), sort_keys=True).encode()
        self.client.txn([], [Put(key, value, lease)])

    def observations(self, now: datetime, max_age: timedelta) -> tuple[ObserverReport, ...]:
        published = [json.loads(kv.value) for kv in self.client.get_prefix(self.keys.observations)]
        return fresh_reports(published, now, max_age.total_seconds())
