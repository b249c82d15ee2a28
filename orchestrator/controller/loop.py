"""`mxctl watch`: observe -> decide -> act -> journal, every interval, forever.

Each cycle works on one snapshot, returns one sentence saying what it did and why, and
never raises: an unexpected error is logged, counted and answered with no action. The
controller's state lives in the journal, so a restarted controller carries on where the
last one stopped, including a failover it was in the middle of. Operators talk to the
loop through the journal too (`mxctl pause`, `resume`, `ack`): only the loop acts.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing, switching
from orchestrator.controller.decision import Action, Decision, Outcome, decide, failover_finished
from orchestrator.controller.failover import FailoverSteps, Move, ssh_target
from orchestrator.controller.intents import IntentVerdict, judge
from orchestrator.controller.journal import Journal
from orchestrator.controller.mailboxes import UNSTICK_COMMAND
from orchestrator.controller.metrics import ControllerMetrics
from orchestrator.controller.model import (
    ControllerState,
    Health,
    Policy,
    Snapshot,
    state_from_json,
    state_to_json,
)
from orchestrator.controller.observe import LocalRound, local_round, probe_settings, snapshot
from orchestrator.controller.planned import PlannedMove
from orchestrator.controller.replication import CanaryThread
from orchestrator.controller.runner import Runner
from orchestrator.controller.windows import next_start, open_windows
from orchestrator.errors import MxctlError
from orchestrator.probes.settings import CanarySettings, ProbeSettings
from orchestrator.remote import run_remote

log = logging.getLogger("mxctl.watch")
DRAIN_EVERY = 10.0
RESYNC = UNSTICK_COMMAND
DRAIN_SCRIPT = f"postqueue -f; {RESYNC} >/dev/null; postqueue -j | wc -l"
CONTROLLER = "controller"


def policy_of(config: MxctlConfig) -> Policy:
    p = config.policy
    return Policy(
        p.failure_threshold, 1 + len(config.witnesses), p.max_replication_lag, p.anti_flap
    )


class OperatorRequests:
    """What operators asked for, kept apart from the loop's own state so neither overwrites
    the other: the loop reads these each cycle and only ever consumes `ack`."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def paused(self) -> bool:
        return self.journal.get("operator.paused") == "1"

    def set_paused(self, paused: bool, at: datetime, who: str) -> None:
        self.journal.put("operator.paused", "1" if paused else "0")
        verb = "paused" if paused else "resumed"
        self.journal.record(at, "operator", verb, "done", f"automatic failover {verb} by {who}")

    def request_ack(self, at: datetime, who: str) -> None:
        self.journal.put("operator.ack", at.isoformat())
        self.journal.record(at, "operator", "ack", "requested", f"anti-flap block acked by {who}")

    def take_ack(self) -> bool:
        if self.journal.get("operator.ack"):
            self.journal.put("operator.ack", "")
            return True
        return False


class Controller:
    def __init__(self, config: MxctlConfig, journal: Journal, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.journal = journal
        self.clock = clock
        self.policy = policy_of(config)
        self.operator = OperatorRequests(journal)
        self.metrics = ControllerMetrics()
        self.last_round: LocalRound | None = None
        self.last_snapshot: Snapshot | None = None
        self.last_sentence = "not started"
        self._lock = threading.Lock()
        self._drained: dict[str, float] = {}
        self.canary: CanaryThread | None = None

    # -- state -------------------------------------------------------------------------
    def load_state(self) -> ControllerState:
        raw = self.journal.get("state")
        if raw:
            return state_from_json(json.loads(raw))
        return ControllerState(self.config.pair.primary, self.config.pair.standby)

    def save_state(self, state: ControllerState) -> None:
        self.journal.put("state", json.dumps(state_to_json(state)))

    # -- one cycle ---------------------------------------------------------------------
    def cycle(self) -> str:
        started = self.clock.monotonic()
        with self._lock:
            try:
                sentence = self._cycle()
            except Exception as exc:  # the loop never dies
                log.exception("cycle failed")
                self.metrics.errors.inc()
                sentence = f"unexpected error, no action taken: {type(exc).__name__}: {exc}"
        self.metrics.cycle_seconds.set(self.clock.monotonic() - started)
        self.last_sentence = sentence
        log.info("%s", sentence)
        return sentence

    def _cycle(self) -> str:
        now = self.clock.now()
        state = replace(self.load_state(), paused=self.operator.paused())
        if self.operator.take_ack() and state.blocked_until is not None:
            state = replace(state, blocked_until=None)
            self.journal.record(now, "operator", "ack", "done", "anti-flap block lifted")
        state = replace(state, maintenance=open_windows(self.config.maintenance.windows, now))
        settings = probe_settings(
            self.config.probes, self.config.dns, self.config.ssh, state.primary, state.standby
        )
        local = local_round(CONTROLLER, settings, self.clock)
        local = replace(local, report=replace(local.report, replication_lag_s=self.lag_s()))
        max_age = 3 * self.config.policy.interval + 2 * self.config.probes.timeout + 5
        snap = snapshot(local, self.config.witnesses, now, max_age)
        self.last_round, self.last_snapshot = local, snap
        decision = decide(snap, state, self.policy, now)
        self._journal_decision(decision, snap, now)
        new_state = decision.state
        sentence = decision.reason
        if decision.action is Action.FAILOVER and decision.promote:
            new_state, sentence = self._carry_out(state, decision)
        else:
            # Planned moves come after observing and deciding, never instead of them.
            new_state, sentence = self._intent(new_state, sentence, now)
        new_state = self._keep_fenced(new_state, snap)
        self._drain_fenced(new_state)
        self.save_state(new_state)
        self._update_metrics(new_state, local, snap, decision)
        return sentence

    def _intent(
        self, state: ControllerState, sentence: str, now: datetime
    ) -> tuple[ControllerState, str]:
        """An operator's switchover/switchback, judged against the state as it is now:
        carried out here (by the one loop), left waiting, or dropped with the reason."""
        found = switching.pending(self.journal)
        if found is None:
            return state, sentence
        intent_id, intent = found
        failing = state.failures(intent.to) > 0
        verdict, why = judge(intent, state, now, failing)
        if verdict is IntentVerdict.WAIT:
            return state, sentence
        if verdict is IntentVerdict.DROP:
            switching.finish(self.journal, intent_id, "dropped", why, now)
            log.warning("ALERT: planned move dropped: %s", why)
            return state, f"{sentence}; planned move dropped: {why}"
        planned = PlannedMove(intent.kind, intent.to, intent.allow_data_loss)
        self.save_state(state)
        result, new_state = switching.execute(
            self.config, self.journal, self.clock, planned, state, intent_id
        )
        if result.status == "done":
            return new_state, f"{planned.kind} to {planned.to} done, as requested"
        return new_state, (
            f"{planned.kind} to {planned.to} aborted at {result.failed_step}: {result.error}"
        )

    def _journal_decision(self, decision: Decision, snap: Snapshot, now: datetime) -> None:
        last = self.journal.last_decision()
        if (
            last is not None
            and last.subject == decision.outcome.value
            and last.reason == decision.reason
        ):
            return
        evidence = {r.observer: {h: v.value for h, v in r.hosts.items()} for r in snap.reports}
        self.journal.record(
            now,
            "decision",
            decision.outcome.value,
            decision.action.value,
            decision.reason,
            {"observations": evidence},
        )
        if decision.action is Action.ALERT and (
            last is None or last.subject != decision.outcome.value
        ):
            log.warning("ALERT: %s", decision.reason)

    def _carry_out(
        self, before: ControllerState, decision: Decision
    ) -> tuple[ControllerState, str]:
        target = decision.promote or ""
        old = before.primary if target == before.standby else before.standby
        run_id = self.journal.get("run.current") or ""
        if decision.outcome is not Outcome.RESUME_FAILOVER or not run_id:
            run_id = f"failover-{self.clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
            self.journal.put("run.current", run_id)
        # The intent is durable before anything acts: a crash from here on resumes this run.
        self.save_state(decision.state)
        steps = FailoverSteps(self.config, self.clock)
        try:
            move = Move("failover", old, target, decision.reason)
            result = Runner(self.journal, self.clock).execute(
                run_id, "failover", old, target, steps.steps(move)
            )
        finally:
            steps.close()
        self.journal.put("run.current", "")
        self.metrics.failovers.labels(result.status).inc()
        if result.status == "done":
            verify = self.journal.events(run_id=run_id)
            for event in verify:
                if event.subject == "verify-dns" and event.status == "done":
                    self.metrics.dns_verify.set(float(event.evidence.get("elapsed_seconds", 0)))
            return failover_finished(decision.state), f"promoted {target}: {decision.reason}"
        aborted = replace(
            decision.state, failover_in_progress=None, blocked_until=before.blocked_until
        )
        log.warning(
            "ALERT: failover to %s aborted at %s: %s", target, result.failed_step, result.error
        )
        return aborted, f"failover to {target} aborted at {result.failed_step}: {result.error}"

    def _keep_fenced(self, state: ControllerState, snap: Snapshot) -> ControllerState:
        """A fenced host seen serving again (it rebooted, or a human restarted it) is fenced
        again: it must never take mail as primary until a switchback."""
        for host in state.fenced:
            if snap.reports and snap.reports[0].health(host) is Health.UP:
                try:
                    result = fencing.fence(
                        ssh_target(self.config, host),
                        "re-fenced: seen serving while fenced",
                        self.config.ssh.timeout,
                    )
                except MxctlError as exc:
                    log.warning(
                        "ALERT: fenced host %s serves again and cannot be re-fenced: %s", host, exc
                    )
                    continue
                self.journal.record(
                    self.clock.now(),
                    "decision",
                    "re-fence",
                    "fence",
                    f"{host} served clients while fenced: fenced again",
                    {"fenced": result.fenced, "detail": result.detail},
                )
        return state

    def _drain_fenced(self, state: ControllerState) -> None:
        """Mail a fenced old primary accepted before it failed must reach the new primary.

        When the old primary is back (reachable over SSH), flush its Postfix queue into its
        own Dovecot (LMTP is local, not fenced) and ask both replicators to sync now: after
        a refused peer Dovecot 2.3 otherwise waits a hard-coded 300 s before retrying.
        Rate-limited: an SSH round per fenced host every DRAIN_EVERY seconds.
        """
        now = self.clock.monotonic()
        for host in sorted(state.fenced):
            if now - self._drained.get(host, -DRAIN_EVERY) < DRAIN_EVERY:
                continue
            self._drained[host] = now
            try:
                out = run_remote(ssh_target(self.config, host), DRAIN_SCRIPT, 5).stdout.split()
                run_remote(ssh_target(self.config, state.primary), RESYNC, 5)
            except MxctlError:
                continue  # still down: try again later
            queued = int(out[-1]) if out and out[-1].isdigit() else 0
            if queued:
                self.journal.record(
                    self.clock.now(),
                    "decision",
                    "drain-fenced",
                    "resync",
                    f"{host} had {queued} queued message(s): flushed into its "
                    "mailboxes and replicated to the primary",
                    {"queued": queued},
                )
                # Look again soon: the flush may have left some deferred for a moment.
                self._drained[host] = now - DRAIN_EVERY + 2

    def _update_metrics(
        self, state: ControllerState, local: LocalRound, snap: Snapshot, decision: Decision
    ) -> None:
        m = self.metrics
        m.cycles.labels(decision.outcome.value).inc()
        for fqdn, results in local.results.items():
            for r in results:
                m.probe_ok.labels(CONTROLLER, fqdn, r.probe).set(1 if r.ok else 0)
                m.probe_latency.labels(fqdn, r.probe).set(r.latency)
        for report in snap.reports:
            for host, health in report.hosts.items():
                m.host_health.labels(report.observer, host).set(1 if health is Health.UP else 0)
        for host in (state.primary, state.standby):
            m.is_primary.labels(host).set(1 if host == state.primary else 0)
            m.fenced.labels(host).set(1 if host in state.fenced else 0)
        m.paused.set(1 if state.paused else 0)
        m.blocked.set(1 if state.blocked_until else 0)

    # -- for /status and `mxctl status` ------------------------------------------------
    def status(self) -> dict[str, Any]:
        state = self.load_state()
        observations = {}
        if self.last_snapshot is not None:
            observations = {
                r.observer: {h: v.value for h, v in r.hosts.items()}
                for r in self.last_snapshot.reports
            }
        windows = self.config.maintenance.windows
        return {
            "maintenance_windows": [
                {
                    "name": w.name,
                    "host": w.host,
                    "cron": w.cron,
                    "duration_s": w.duration,
                    "open": bool(open_windows([w], self.clock.now())),
                    "next_start": next_start(w, self.clock.now()).isoformat(),
                }
                for w in windows
            ],
            "primary": state.primary,
            "standby": state.standby,
            "fenced": sorted(state.fenced),
            "paused": self.operator.paused(),
            "blocked_until": state.blocked_until.isoformat() if state.blocked_until else None,
            "failover_in_progress": state.failover_in_progress,
            "replication_lag_s": self.lag_s(),
            "last_cycle": self.last_sentence,
            "observations": observations,
            "probes": {h: [r.to_json() for r in rs] for h, rs in self.last_round.results.items()}
            if self.last_round
            else {},
        }

    def lag_s(self) -> float | None:
        return self.canary.lag_s() if self.canary is not None else None

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
