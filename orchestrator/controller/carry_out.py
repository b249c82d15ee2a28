"""Carry out a failover the decision asked for, and clean up after one that failed.

The run's intent is durable before anything acts (the state names the host being
promoted), so a controller killed mid-way resumes the same run. A run that fails:
- before DNS moved (pre-hooks, the standby check, fencing, or a DNS rewrite that was
  swapped back in every zone): the old primary, if this run fenced it and it is still
  reachable and its daemons run, is un-fenced, so the pair is never left with no host
  taking mail; the next attempt is a new run, after a backoff;
- after DNS moved (verification, a later step): it is finished forward by the next
  cycles, in the same run (journaled steps are skipped), after a backoff. DNS and the
  state never disagree for longer than that.
Each failed attempt is journaled and alerted. The state that ends a run (finished, or
failed before DNS moved) is saved before the run key is cleared: a controller killed
between the two finds either the same run, its steps journaled done, or no run at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.decision import Decision, Outcome, failover_failed, failover_finished
from orchestrator.controller.failover import FailoverSteps, Move, ssh_target
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState, Policy
from orchestrator.controller.runner import Runner, RunResult, StepGate
from orchestrator.errors import MxctlError
from orchestrator.remote import run_remote

log = logging.getLogger(__name__)
RUN_KEY = "run.current"
DAEMONS_RUN = "systemctl is-active --quiet postfix && systemctl is-active --quiet dovecot"


@dataclass(frozen=True)
class Carried:
    state: ControllerState
    sentence: str
    result: RunResult


def carry_out(
    config: MxctlConfig,
    journal: Journal,
    clock: Clock,
    policy: Policy,
    before: ControllerState,
    decision: Decision,
    save_state: Callable[[ControllerState], None],
    gate: StepGate | None = None,
) -> Carried:
    target = decision.promote or ""
    old = before.primary if target == before.standby else before.standby
    run_id = journal.get(RUN_KEY) or ""
    if decision.outcome is not Outcome.RESUME_FAILOVER or not run_id:
        run_id = f"failover-{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        journal.put(RUN_KEY, run_id)
    # The intent is durable before anything acts: a crash from here on resumes this run.
    save_state(decision.state)
    steps = FailoverSteps(config, clock)
    try:
        move = Move("failover", old, target, decision.reason)
        runner = Runner(journal, clock, gate)
        result = runner.execute(run_id, "failover", old, target, steps.steps(move))
    finally:
        steps.close()
    if result.status == "done":
        finished = failover_finished(decision.state)
        # The finished state is durable before the run key goes: a crash in between
        # resumes this run (every step journaled done: none acts again), never a new one.
        save_state(finished)
        journal.put(RUN_KEY, "")
        return Carried(finished, f"promoted {target}: {decision.reason}", result)
    if result.refused:
        # This controller may no longer act (a cluster leader that lost its lease): it
        # neither rolls back nor backs off; the leader now in charge finishes the run.
        return Carried(decision.state, f"failover to {target} stopped: {result.error}", result)
    dns_moved = journal.step_status(run_id, "rewrite-dns") == "done"
    after = failover_failed(before, decision.state, dns_moved, policy, clock.now())
    when = after.retry_at.isoformat() if after.retry_at else "now"
    if dns_moved:
        sentence = (
            f"failover to {target} failed at {result.failed_step} after DNS moved: finishing "
            f"it forward from {when} (attempt {after.failed_attempts}): {result.error}"
        )
    else:
        # As above: the state naming no run in progress is durable before the key goes.
        save_state(after)
        journal.put(RUN_KEY, "")
        refused = gate.before_step("roll-back") if gate is not None else None
        if refused is None:
            rolled = roll_back(config, journal, clock, run_id, old)
        else:  # a controller that may no longer act touches no host; the leader decides
            rolled = f"{old} left as it is: {refused}"
            journal.record(clock.now(), "step", "roll-back", "failed", rolled, {}, run_id)
        sentence = (
            f"failover to {target} aborted at {result.failed_step}, DNS unchanged ({rolled}); "
            f"next attempt not before {when} (attempt {after.failed_attempts}): {result.error}"
        )
    log.warning("ALERT: %s", sentence)
    return Carried(after, sentence, result)


def roll_back(config: MxctlConfig, journal: Journal, clock: Clock, run_id: str, old: str) -> str:
    """Un-fence the old primary this run fenced, when it is reachable and its daemons run:
    DNS still sends mail to it."""
    if journal.step_status(run_id, "fence-old-primary") != "done":
        return f"{old} was not fenced"
    target, timeout = ssh_target(config, old), config.ssh.timeout
    try:
        healthy = run_remote(target, DAEMONS_RUN, timeout).exit_code == 0
        if healthy:
            fencing.unfence(target, timeout)
    except MxctlError as exc:
        why = f"{old} stays fenced: cannot reach it ({exc}); unfenced when it is back"
        journal.record(clock.now(), "step", "unfence-old-primary", "failed", why, run_id=run_id)
        return why
    if not healthy:
        why = f"{old} stays fenced: Postfix or Dovecot is not running on it"
        journal.record(clock.now(), "step", "unfence-old-primary", "skipped", why, run_id=run_id)
        return why
    why = f"{old} un-fenced: DNS still points at it and it is healthy"
    journal.record(clock.now(), "step", "unfence-old-primary", "done", why, run_id=run_id)
    return why
