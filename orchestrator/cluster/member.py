"""One controller's place in the cluster: tick the election each cycle, say whether it may
act, journal role changes, and alert when etcd has no quorum for it.

No etcd, no automation: when etcd does not answer, the controller takes no action at all
(it cannot prove that no other controller leads) and an `alert` event `etcd-no-quorum` is
journaled once on entry and once when etcd answers again.
"""

from __future__ import annotations

import logging

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.cluster.etcd import EtcdClient
from orchestrator.cluster.leadership import ClusterKeys, Elector, Role, Verdict
from orchestrator.cluster.shared_state import SharedState
from orchestrator.config.cluster_section import ClusterConfig
from orchestrator.controller.journal import Journal

log = logging.getLogger(__name__)
NO_QUORUM_ALERT = "etcd-no-quorum"
ALERT_KEY = "cluster.alert.no-quorum"


class ClusterMember:
    def __init__(
        self,
        config: ClusterConfig,
        journal: Journal,
        clock: Clock = SYSTEM_CLOCK,
        client: EtcdClient | None = None,
    ) -> None:
        self.config, self.journal, self.clock = config, journal, clock
        self.client = client or EtcdClient(config.endpoints, tls=config.tls)
        keys = ClusterKeys(config.name)
        self.elector = Elector(
            self.client, keys, config.member, config.lease_ttl, config.safety_margin, clock
        )
        self.shared = SharedState(self.client, keys)
        self._role: Role | None = None

    def close(self) -> None:
        self.client.close()

    def check(self) -> Verdict:
        """A fresh tick and its verdict: once per cycle, and before every step of a run."""
        self.elector.tick()
        verdict = self.elector.verdict()
        self._journal_role(verdict)
        self._journal_alert(verdict)
        return verdict

    def _journal_role(self, verdict: Verdict) -> None:
        if verdict.role is self._role:
            return
        self._role = verdict.role
        log.info("cluster %s: %s", self.config.name, verdict.reason)
        self.journal.record(
            self.clock.now(), "cluster", verdict.role.value, "role", verdict.reason,
            {"member": self.config.member, "term": verdict.term},
        )  # fmt: skip

    def _journal_alert(self, verdict: Verdict) -> None:
        open_now = verdict.role is Role.NO_ETCD
        was_open = self.journal.get(ALERT_KEY) == "open"
        if open_now == was_open:
            return
        status = "open" if open_now else "resolved"
        reason = verdict.reason if open_now else "etcd answers again"
        self.journal.record(
            self.clock.now(), "alert", NO_QUORUM_ALERT, status, reason,
            {"member": self.config.member, "endpoints": list(self.config.endpoints)},
        )  # fmt: skip
        self.journal.put(ALERT_KEY, status)
        if open_now:
            log.error("alert %s: %s", NO_QUORUM_ALERT, reason)
