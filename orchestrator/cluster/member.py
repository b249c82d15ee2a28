"""One controller's place in the cluster: tick the election each cycle, say whether it may
act, journal role changes, and alert when etcd has no quorum for it.

No etcd, no automation: when etcd does not answer, the controller takes no action at all
(it cannot prove that no other controller leads); the loop raises the alert
`etcd-no-quorum` (journaled and sent to the webhooks when it opens and when it resolves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.cluster.etcd import EtcdClient, EtcdUnavailable
from orchestrator.cluster.leadership import ClusterKeys, Elector, Role, Verdict
from orchestrator.cluster.shared_state import NotLeader, RunRecord, SharedState, StaleRevision
from orchestrator.config.cluster_section import ClusterConfig
from orchestrator.controller.carry_out import RUN_KEY
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState, ObserverReport

log = logging.getLogger(__name__)
NO_QUORUM_ALERT = "etcd-no-quorum"


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
        self.verdict: Verdict | None = None
        self._state_revision = 0  # the shared state's mod revision as the leader last read it
        self._run_term: int | None = None  # the term the run under way here began in

    def close(self) -> None:
        self.client.close()

    def check(self) -> Verdict:
        """A fresh tick and its verdict: once per cycle, and before every step of a run."""
        self.elector.tick()
        verdict = self.elector.verdict()
        self.verdict = verdict
        self._journal_role(verdict)
        if verdict.role is Role.NO_ETCD:
            log.error("cluster %s: %s", self.config.name, verdict.reason)
        return verdict

    # -- runs (the runner's StepGate) --------------------------------------------------
    def before_step(self, step: str) -> str | None:
        """The check before each step: None when this controller may act. During a run,
        only in the term the run began in: a check that lost the key and won it again (a
        new term) may have let another leader act between, so the run stops here and the
        loop, leading in the new term, takes it up again from the cluster's record."""
        verdict = self.check()
        return term_refusal(verdict.may_act, verdict.reason, self._run_term, verdict.term)

    def run_finished(self, run_id: str) -> None:
        self._run_term = None

    def run_started(self, run_id: str, kind: str, from_host: str, to_host: str) -> None:
        self._run_term = self._term() or None

        def start(run: RunRecord | None) -> RunRecord | None:
            if run is not None and run.run_id == run_id:
                return None  # resumed: its completed steps stay
            return RunRecord(run_id, kind, from_host, to_host, self._term())

        self._update_run(run_id, start)

    def step_done(self, run_id: str, step: str) -> None:
        def done(run: RunRecord | None) -> RunRecord | None:
            if run is None or run.run_id != run_id:
                return None
            return replace(run, completed=(*run.completed, step))

        self._update_run(run_id, done)

    def _update_run(
        self, run_id: str, change: Callable[[RunRecord | None], RunRecord | None]
    ) -> None:
        try:
            read = self.shared.read_run()
            run = change(read.value if isinstance(read.value, RunRecord) else None)
            if run is not None:
                self.shared.write_run(run, read.revision, self._term())
        except (NotLeader, StaleRevision, EtcdUnavailable) as exc:
            # Not fatal: a step done but not recorded is done again by the next leader
            # (every step is idempotent), and the gate stops this controller anyway.
            log.warning("cluster %s: run %s not recorded: %s", self.config.name, run_id, exc)

    def evidence(self) -> dict[str, object]:
        return {"term": self._term(), "member": self.config.member}

    def _term(self) -> int:
        return self.verdict.term if self.verdict is not None and self.verdict.term else 0

    def adopt_run(self, journal: Journal, to_host: str) -> str | None:
        """Before resuming a failover to `to_host`: take the cluster's record of the run
        into this controller's journal (its id, and its completed steps as done), so the
        runner goes on at the next step. The run id, or None when there is none to adopt."""
        run = self.shared.read_run().value
        # A planned move's record is not a failover's: a new leader runs the move again
        # from its first step (its intent stays pending), never finishes it as a failover
        # (which would fence the backup MX of a switchback and leave the TTLs low).
        if not isinstance(run, RunRecord) or run.to_host != to_host or run.kind != "failover":
            return None
        now = self.clock.now()
        journal.put(RUN_KEY, run.run_id)
        journal.start_run(now, run.run_id, run.kind, run.from_host, run.to_host)
        for step in run.completed:
            if journal.step_status(run.run_id, step) != "done":
                why = f"done by the leader of term {run.term} (the cluster's record of the run)"
                journal.record(now, "step", step, "done", why, {"term": run.term}, run.run_id)
        return run.run_id

    # -- shared state (the leader's) ----------------------------------------------------
    def load_state(self, fallback: ControllerState) -> ControllerState:
        """The cluster's state, as a new leader must start from; `fallback` (this
        controller's own record) when the cluster has none yet."""
        read = self.shared.read_state()
        self._state_revision = read.revision
        state = read.value
        return state if isinstance(state, ControllerState) else fallback

    def save_state(self, state: ControllerState) -> bool:
        """Write the state in this leader's term, compared with the revision it read.
        False when refused (the term is over, someone else wrote): the leader now in
        charge owns the state; this controller's copy is not written over it."""
        term = self.verdict.term if self.verdict is not None and self.verdict.may_act else None
        if term is None:
            return False
        try:
            self._state_revision = self.shared.write_state(state, self._state_revision, term)
        except (NotLeader, StaleRevision, EtcdUnavailable) as exc:
            log.warning("cluster %s: state not written: %s", self.config.name, exc)
            return False
        return True

    # -- votes --------------------------------------------------------------------------
    def publish(self, report: ObserverReport, now: datetime) -> None:
        lease = self.elector.lease
        if lease is None:
            return
        try:
            self.shared.publish_observation(report, now, lease)
        except EtcdUnavailable as exc:
            log.warning("cluster %s: observation not published: %s", self.config.name, exc)

    def follow(self, why: str, own: ObserverReport | None, now: datetime) -> str:
        """A follower's cycle after observing: publish its view; the cycle's sentence."""
        if own is None:
            return f"{why}; no view of the mail hosts this cycle"
        self.publish(own, now)
        seen = ", ".join(f"{h} {v.value}" for h, v in sorted(own.hosts.items()))
        return f"{why}; published our view: {seen}"

    def votes(
        self, own: ObserverReport | None, now: datetime, max_age_s: float
    ) -> tuple[ObserverReport, ...]:
        """The leader's cycle: publish its own view, and read the other controllers'
        (a stale one abstains) as votes next to its own observers."""
        if own is not None:
            self.publish(own, now)
        reports = self.shared.observations(now, timedelta(seconds=max_age_s))
        others = set(self.config.members) - {self.config.member}
        return tuple(r for r in reports if r.observer in others)

    def describe(self) -> dict[str, object]:
        """For `mxctl status` and /status: the leader, its term, this controller's role,
        its lease's time left by its own clock, and whether etcd answers."""
        # The verdict as of now, not as of the last check: a leader whose loop is stuck in
        # calls to an etcd it lost must not keep saying it leads once its lease's own-clock
        # deadline has passed (may_act is pure: no call to etcd here).
        view = self.elector.view
        verdict = self.elector.verdict() if self.verdict is not None else None
        left = view.valid_until - self.clock.monotonic() if view.valid_until else None
        return {
            "name": self.config.name,
            "member": self.config.member,
            "members": list(self.config.members),
            "role": verdict.role.value if verdict else "starting",
            "leader": view.holder,
            "term": view.term,
            "lease_left_s": round(left, 2)
            if left is not None and verdict and verdict.may_act
            else None,
            "etcd": "ok" if view.etcd_reachable else f"unreachable: {view.error}",
            "why": verdict.reason if verdict else "",
        }

    def _journal_role(self, verdict: Verdict) -> None:
        if verdict.role is self._role:
            return
        self._role = verdict.role
        log.info("cluster %s: %s", self.config.name, verdict.reason)
        self.journal.record(
            self.clock.now(), "cluster", verdict.role.value, "role", verdict.reason,
            {"member": self.config.member, "term": verdict.term},
        )  # fmt: skip


def term_refusal(may_act: bool, reason: str, run_term: int | None, term: int | None) -> str | None:
    """Why a step may not run (None: it may). Pure: tested from a table."""
    if not may_act:
        return reason
    if run_term is not None and term != run_term:
        return (
            f"the run began in term {run_term} and this is term {term}: another leader may "
            "have acted in between, so the run stops and is taken up again in this term"
        )
    return None
