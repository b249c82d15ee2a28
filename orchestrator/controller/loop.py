"""`mxctl watch`: observe -> reconcile -> decide -> act -> journal, every interval, forever.

Each cycle reads the world (probes, observers, what DNS serves, the hosts' fences), puts
right any difference between the world and the controller's state, decides on one
snapshot, and returns one sentence saying what it did and why. It never raises: an
unexpected error is logged, counted and answered with no action, and `/health` turns 503
when cycles keep failing or stop completing. The controller's state lives in the journal,
so a restarted controller carries on where the last one stopped. Operators talk to the
loop through the journal too (`pause`, `resume`, `ack`, planned moves): only the loop acts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import replace
from datetime import datetime

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.cluster.leadership import ClusterKeys, Role
from orchestrator.cluster.member import NO_QUORUM_ALERT, ClusterMember
from orchestrator.cluster.requests import ClusterRequests
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import switching
from orchestrator.controller.alerts import (
    Alert,
    AlertBook,
    ReplicationFacts,
    current_alerts,
    held_by_pause,
)
from orchestrator.controller.carry_out import carry_out
from orchestrator.controller.decision import Action, Decision, Outcome, decide
from orchestrator.controller.intents import IntentVerdict, judge
from orchestrator.controller.journal import Journal
from orchestrator.controller.liveness import Busy, liveness
from orchestrator.controller.metrics import ClusterMetrics, ControllerMetrics
from orchestrator.controller.model import (
    ControllerState,
    Health,
    ObserverReport,
    Policy,
    state_from_json,
    state_to_json,
)
from orchestrator.controller.observe import LocalRound, local_round, probe_settings
from orchestrator.controller.observers import ObserverWatch
from orchestrator.controller.operator import OperatorRequests, RequestStore
from orchestrator.controller.planned import DNS_MOVED_STEP, PlannedMove
from orchestrator.controller.planned_watch import RunWatch
from orchestrator.controller.reconcile import Facts, reconcile
from orchestrator.controller.replication import CanaryThread
from orchestrator.controller.runner import StepGate
from orchestrator.controller.status import StatusView
from orchestrator.controller.upkeep import Upkeep
from orchestrator.controller.windows import open_windows
from orchestrator.controller.world import World, WorldReader
from orchestrator.dns.factory import make_provider
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.retry import RetryPolicy
from orchestrator.probes.settings import CanarySettings, ProbeSettings

__all__ = ["Controller", "OperatorRequests", "policy_of"]
log = logging.getLogger("mxctl.watch")
CONTROLLER = "controller"


def policy_of(config: MxctlConfig) -> Policy:
    p = config.policy
    observers = 1 + len(config.witnesses) + (1 if p.standby_observer else 0)
    if config.cluster is not None:  # every other controller of the cluster votes too
        observers += len(config.cluster.members) - 1
    return Policy(p.failure_threshold, observers, p.max_replication_lag, p.anti_flap,
                  p.retry_backoff, p.retry_backoff_max)  # fmt: skip


class Controller(StatusView):
    def __init__(
        self,
        config: MxctlConfig,
        journal: Journal,
        clock: Clock = SYSTEM_CLOCK,
        cluster: ClusterMember | None = None,
    ) -> None:
        self.config, self.journal, self.clock = config, journal, clock
        # With a controller cluster only its leader acts; None: this controller is alone.
        self.cluster = cluster
        self.observer = cluster.config.member if cluster is not None else CONTROLLER
        self.policy = policy_of(config)
        # Operators' requests and intents: the cluster's (any controller host may take
        # them) or this controller's own journal.
        self.requests: RequestStore = (
            ClusterRequests(cluster.client, ClusterKeys(cluster.config.name), journal)
            if cluster is not None
            else journal
        )
        self.operator = OperatorRequests(self.requests)
        self.metrics = ControllerMetrics()
        self.cluster_metrics = ClusterMetrics(self.metrics.registry) if cluster else None
        self.alerts = AlertBook(journal, config.notify.webhooks, config.notify.timeout)
        self.upkeep = Upkeep(config, journal, clock)
        self.observer_watch = ObserverWatch(self.policy.failure_threshold)
        self.world_reader = WorldReader(config, self.provider)
        self.last_round: LocalRound | None = None
        self.last_world: World | None = None
        self.last_sentence = "not started"
        self.started = clock.monotonic()
        self.last_completed: float | None = None
        self.recent_errors: deque[str | None] = deque(maxlen=100)
        self.busy: Busy | None = None
        self.canary: CanaryThread | None = None
        self._provider: BaseProvider | None = None
        self._lock = threading.Lock()

    def provider(self) -> BaseProvider:
        """A provider for the per-cycle reads: short retry budget, never a stalled cycle."""
        if self._provider is None:
            retry = RetryPolicy(attempts=2, clock=self.clock, default_budget=3.0)
            self._provider = make_provider(self.config.dns, self.clock, retry)
        return self._provider

    # -- state -------------------------------------------------------------------------
    def load_state(self) -> ControllerState:
        raw = self.journal.get("state")
        if raw:
            return state_from_json(json.loads(raw))
        return ControllerState(self.config.pair.primary, self.config.pair.standby)

    def save_state(self, state: ControllerState) -> None:
        if self.cluster is not None:  # the cluster's copy first; written only by its leader
            self.cluster.save_state(state)
        self.journal.put("state", json.dumps(state_to_json(state)))

    def gate(self) -> StepGate | None:
        return self.cluster

    # -- one cycle ---------------------------------------------------------------------
    def cycle(self) -> str:
        started = self.clock.monotonic()
        with self._lock:
            try:
                sentence = self._cycle()
                self.recent_errors.append(None)
                self.last_completed = self.clock.monotonic()
                self.metrics.last_completed.set(self.clock.now().timestamp())
            except Exception as exc:  # the loop never dies
                log.exception("cycle failed")
                self.metrics.errors.inc()
                sentence = f"unexpected error, no action taken: {type(exc).__name__}: {exc}"
                self.recent_errors.append(sentence)
            finally:
                self.busy = None
        self.metrics.cycle_seconds.set(self.clock.monotonic() - started)
        self.last_sentence = sentence
        log.info("%s", sentence)
        return sentence

    def health(self) -> tuple[bool, str]:
        return liveness(self.clock.monotonic(), self.started, self.last_completed,
                        self.config.policy.interval, list(self.recent_errors),
                        self.config.policy.unhealthy_after_errors, self.busy)  # fmt: skip

    def _cycle(self) -> str:
        now = self.clock.now()
        base = self.load_state()
        if self.cluster is not None:
            verdict = self.cluster.check()
            view, m = self.cluster.elector.view, self.cluster_metrics
            if m is not None:
                m.leader.set(1 if verdict.may_act else 0)
                m.etcd_up.set(1 if view.etcd_reachable else 0)
                m.term.set(view.term or 0)
            if not verdict.may_act:  # a follower (or cut off from etcd) only observes
                # Not the leader: observe and publish our view as a vote; act on nothing.
                self._observe(base, now)
                no_etcd = verdict.reason if verdict.role is Role.NO_ETCD else None
                self._follower_alerts(no_etcd, base, now)
                return self.cluster.follow(verdict.reason, self._own_view(), now)
            base = self.cluster.load_state(base)
        state = replace(base, paused=self.operator.paused())
        if self.operator.take_ack() and state.blocked_until is not None:
            state = replace(state, blocked_until=None)
            self.journal.record(now, "operator", "ack", "done", "anti-flap block lifted")
        state = replace(state, maintenance=open_windows(self.config.maintenance.windows, now))
        world = self._observe(state, now)
        if self.cluster is not None:  # every other controller's view votes too
            votes = self.cluster.votes(self._own_view(), now, self._max_age())
            world = replace(world, snapshot=world.snapshot.with_reports(votes))
        state, problems, notes = self._reconcile(state, world)
        decision = decide(world.snapshot, state, self.policy, now)
        self._journal_decision(decision, world, now)
        new_state, sentence = decision.state, decision.reason
        if decision.action is Action.FAILOVER and decision.promote:
            budget = 2 * (self.config.policy.failover_deadline + self.config.hooks.timeout) + 30
            self.busy = Busy(f"failover to {decision.promote}", self.clock.monotonic(), budget)
            if self.cluster is not None and decision.outcome is Outcome.RESUME_FAILOVER:
                # Another leader may have started it: go on at its next step.
                self.cluster.adopt_run(self.journal, decision.promote)
            carried = carry_out(self.config, self.journal, self.clock, self.policy, state,
                                decision, self.save_state, self.gate())  # fmt: skip
            self.metrics.failovers.labels(carried.result.status).inc()
            new_state, sentence = carried.state, carried.sentence
        else:
            # Planned moves come after observing and deciding, never instead of them.
            new_state, sentence = self._intent(new_state, sentence, now)
        if self.cluster is None or self.cluster.before_step("drain-fenced") is None:
            self.upkeep.drain_fenced(new_state.fenced, new_state.primary, now)
        self.save_state(new_state)
        self._publish(decision, new_state, world, problems, now)
        return f"{sentence}; reconciled: {'; '.join(notes)}" if notes else sentence

    def _publish(
        self,
        decision: Decision,
        new_state: ControllerState,
        world: World,
        problems: dict[str, str],
        now: datetime,
    ) -> None:
        """Alerts and metrics from one cycle's decision."""
        replication = ReplicationFacts(self.lag_s(), self.replication_problem(world, new_state))
        if new_state.standby in new_state.fenced:
            # A fenced standby refuses IMAP, so the canary cannot look at it: only the
            # replication path (its reach to the primary's doveadm port) tells.
            replication = ReplicationFacts(None, self.replication_problem(world, new_state, False))
        max_lag = self.policy.max_replication_lag_s
        lost = self.observer_watch.alerts(world.snapshot, new_state.primary, self.policy.observers)
        problems = {**problems, **lost}
        current = current_alerts(decision, new_state, replication, max_lag, problems)
        self.alerts.update(current, now, {"primary": new_state.primary,
                                          "standby": new_state.standby})  # fmt: skip
        self._update_metrics(new_state, world, decision, set(current))

    def _watch_cycle(self, state: ControllerState, what: str) -> Decision:
        """A cycle taken while a planned move waits: observe, decide, journal, alert and
        publish as any cycle does, act on nothing (the move owns DNS and the fences; what
        the decision means for the move is `planned_watch.wait_verdict`'s to say)."""
        started, now = self.clock.monotonic(), self.clock.now()
        world = self._observe(state, now)
        if self.cluster is not None:
            votes = self.cluster.votes(self._own_view(), now, self._max_age())
            world = replace(world, snapshot=world.snapshot.with_reports(votes))
        decision = decide(world.snapshot, state, self.policy, now)
        self._journal_decision(decision, world, now)
        counted = replace(state, failed_cycles=decision.state.failed_cycles)
        self._publish(decision, counted, world, {}, now)
        self.last_completed = self.clock.monotonic()
        self.metrics.last_completed.set(now.timestamp())
        self.metrics.cycle_seconds.set(self.last_completed - started)
        self.recent_errors.append(None)
        self.last_sentence = f"{what} under way; {decision.reason}"
        log.info("%s", self.last_sentence)
        return decision

    def _observe(self, state: ControllerState, now: datetime) -> World:
        settings = probe_settings(
            self.config.probes, self.config.dns, self.config.ssh, state.primary, state.standby
        )
        lag = self.lag_s()

        def local() -> LocalRound:
            found = local_round(self.observer, settings, self.clock)
            return replace(found, report=replace(found.report, replication_lag_s=lag))

        max_age = self._max_age()
        round_, world = self.world_reader.read(local, state.primary, state.standby, now, max_age,
                                               self.clock.monotonic)  # fmt: skip
        self.last_round, self.last_world = round_, world
        return world

    def _reconcile(
        self, state: ControllerState, world: World
    ) -> tuple[ControllerState, dict[str, str], tuple[str, ...]]:
        serving = {}
        if self.last_round is not None:
            serving = {h: any(r.ok for r in rs) for h, rs in self.last_round.results.items()}
        planned = switching.under_way(self.journal, self.requests)
        facts = Facts(
            world.dns.target,
            world.dns.mixed,
            world.fenced_on_host,
            serving,
            planned,
            world.dns.backup,
            self.policy.failure_threshold,
        )
        fix = reconcile(state, facts)
        if not fix.notes:  # nothing to do, or all of it held back by a pause
            return fix.state, held_by_pause(fix.held), ()
        evidence: dict[str, object] = {"dns": world.dns.describe(),
                                       "fenced_on_host": world.fenced_on_host,
                                       "serving": serving}  # fmt: skip
        self.journal.record(self.clock.now(), "decision", "reconcile", "act",
                            "; ".join(fix.notes), evidence)  # fmt: skip
        self.save_state(fix.state)
        refused = self.cluster.before_step("reconcile") if self.cluster is not None else None
        if refused is not None:
            return fix.state, {}, (*fix.notes, f"not applied: {refused}")
        problems = self.upkeep.apply(fix, self.provider(), evidence)
        return fix.state, problems, fix.notes

    def _intent(
        self, state: ControllerState, sentence: str, now: datetime
    ) -> tuple[ControllerState, str]:
        """An operator's switchover/switchback, judged against the state as it is now:
        carried out here (by the one loop), left waiting, or dropped with the reason."""
        found = switching.pending(self.requests)
        if found is None:
            return state, sentence
        intent_id, intent = found
        verdict, why = judge(intent, state, now, state.failures(intent.to) > 0)
        if verdict is IntentVerdict.WAIT:
            return state, sentence
        if verdict is IntentVerdict.DROP:
            switching.finish(self.requests, intent_id, "dropped", why, now)
            log.warning("ALERT: planned move dropped: %s", why)
            return state, f"{sentence}; planned move dropped: {why}"
        planned = PlannedMove(intent.kind, intent.to, intent.allow_data_loss)
        m = self.config.maintenance
        budget = (m.intent_expiry + m.converge_timeout + 2 * m.drain_timeout + m.low_ttl
                  + max((r.ttl for r in self.config.dns.records), default=0))  # fmt: skip
        self.busy = Busy(f"{intent.kind} to {intent.to}", self.clock.monotonic(), budget)
        self.save_state(state)
        what = f"{intent.kind} to {intent.to}"
        watch = RunWatch(
            lambda s: self._watch_cycle(s, what),
            state,
            intent.to,
            self._planned_dns_moved,
            self.clock,
            self.config.policy.interval,
            self.policy.failure_threshold,
        )
        result, new_state = switching.execute(self.config, self.journal, self.clock, planned,
                                              state, self.save_state, intent_id,
                                              self.gate(), self.requests, watch)  # fmt: skip
        if result.status == "done" and result.steps_failed:
            failed = "; ".join(result.steps_failed.values())
            log.warning("ALERT: %s to %s done, but %s", planned.kind, planned.to, failed)
            return new_state, f"{planned.kind} to {planned.to} done, but {failed}"
        if result.status == "done":
            return new_state, f"{planned.kind} to {planned.to} done, as requested"
        return new_state, (
            f"{planned.kind} to {planned.to} aborted at {result.failed_step}: {result.error}"
        )

    def _planned_dns_moved(self) -> bool:
        run_id = self.journal.get(switching.RUN_KEY)
        return bool(run_id) and self.journal.step_status(run_id or "", DNS_MOVED_STEP) == "done"

    # -- the controller cluster ------------------------------------------------------------
    def _max_age(self) -> float:
        return 3 * self.config.policy.interval + 2 * self.config.probes.timeout + 5

    def _follower_alerts(self, no_etcd: str | None, state: ControllerState, now: datetime) -> None:
        """Only etcd's alert changes on a follower's cycle; the others stay as they were
        (the leader owns them)."""
        current = {k: a for k, a in self.alerts.open_alerts().items() if k != NO_QUORUM_ALERT}
        if no_etcd is not None:
            current[NO_QUORUM_ALERT] = Alert(NO_QUORUM_ALERT, no_etcd)
        self.alerts.update(current, now, {"primary": state.primary, "standby": state.standby})

    def _own_view(self) -> ObserverReport | None:
        return self.last_round.report if self.last_round is not None else None

    def _journal_decision(self, decision: Decision, world: World, now: datetime) -> None:
        last = self.journal.last_decision()
        if (
            last is not None
            and last.subject == decision.outcome.value
            and (last.reason == decision.reason)
        ):
            return
        evidence = {r.observer: {h: v.value for h, v in r.hosts.items()}
                    for r in world.snapshot.reports}  # fmt: skip
        abstain = {r.observer: r.note for r in world.snapshot.reports if r.note}
        self.journal.record(now, "decision", decision.outcome.value, decision.action.value,
                            decision.reason, {"observations": evidence, "notes": abstain,
                                              "dns": world.dns.describe()})  # fmt: skip

    # -- replication, from the canary thread ---------------------------------------------
    def lag_s(self) -> float | None:
        return self.canary.lag_s() if self.canary is not None else None

    def replication_broken(self) -> str | None:
        return self.canary.broken() if self.canary is not None else None

    def replication_problem(
        self, world: World, state: ControllerState, canary: bool = True
    ) -> str | None:
        """Replication broken: the standby cannot reach a primary that serves (known this
        cycle), or the last canary reached the primary but not the standby."""
        primary_up = (
            world.snapshot.reports and world.snapshot.reports[0].health(state.primary) is Health.UP
        )
        if world.replication_path is False and primary_up:
            return (
                f"the standby {state.standby} cannot reach the replication port of "
                f"{state.primary}, which serves clients"
            )
        return self.replication_broken() if canary else None

    def start_canary(self) -> None:
        """Measure replication lag in the background (when [probes] names a canary domain)."""
        probes = self.config.probes
        if probes.canary_domain is None:
            return
        canary = CanarySettings(
            domain=probes.canary_domain,
            nameservers=probes.canary_nameservers,
            sender=probes.probe_user,
        )

        def settings_now() -> ProbeSettings:
            state = self.load_state()
            return probe_settings(probes, self.config.dns, self.config.ssh,
                                  state.primary, state.standby)  # fmt: skip

        self.canary = CanaryThread(settings_now, canary, probes.canary_every, self.clock)
        self.canary.start()

    def run_forever(self, stop: threading.Event) -> None:
        interval = self.config.policy.interval
        self.start_canary()
        try:
            while not stop.is_set():
                started = self.clock.monotonic()
                self.cycle()
                stop.wait(max(0.0, interval - (self.clock.monotonic() - started)))
        finally:
            if self.canary is not None:
                self.canary.stop.set()
            self.world_reader.close()
