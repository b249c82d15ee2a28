"""Planned moves as intents: requested by a command, carried out by exactly one process.

`mxctl switchover` writes its intent to the journal. When `mxctl watch` runs (it holds the
controller lock), the loop carries the intent out at its next cycle and the command only
waits for the result; when no loop runs, the command takes the lock and carries it out
itself. Either way one process acts, and an intent interrupted by a crash is resumed
(same run, finished steps skipped) by whichever process acts next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.failover import Move, ssh_target
from orchestrator.controller.intents import Intent, intent_problem
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState
from orchestrator.controller.operator import RequestStore
from orchestrator.controller.planned import (
    DNS_MOVED_STEP,
    FENCE_STEP,
    PlannedMove,
    PlannedSteps,
    move_for,
    state_after,
)
from orchestrator.controller.planned_watch import WaitWatcher
from orchestrator.controller.runner import Runner, RunResult, StepGate
from orchestrator.errors import MxctlError, UsageError

log = logging.getLogger(__name__)
INTENT_KEY = "intent.planned"
RUN_KEY = "run.planned"
RESULT_KEY = "intent.result"
# The intent a run is carrying out now, kept where the intent is (a controller cluster's
# store): `mxctl cancel` on another host must see that the leader has started it.
STARTED_KEY = "intent.started"


class ControllerBusy(MxctlError):
    """Another process holds the controller lock."""


@contextlib.contextmanager
def controller_lock(state_dir: Path) -> Iterator[None]:
    """Held by whoever acts on the pair: the `mxctl watch` loop, or a planned-move command
    when no loop runs. Raises ControllerBusy when taken."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "controller.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ControllerBusy(f"a controller already acts on this pair ({state_dir})") from None
        yield
    finally:
        os.close(fd)


def request(
    journal: RequestStore,
    planned: PlannedMove,
    at: datetime,
    who: str,
    now: datetime,
    state: ControllerState,
    expiry_s: float,
) -> str:
    """Validate the move against the current state, then hand it to whoever acts; returns
    the intent's id. Raises UsageError, naming the problem, when it cannot apply now."""
    problem = intent_problem(planned.kind, planned.to, state)
    if problem is not None:
        why = f"{planned.kind} to {planned.to} refused: {problem}"
        journal.record(now, "operator", planned.kind, "refused", why, {"by": who})
        raise UsageError(f"{planned.kind} to {planned.to}: {problem}")
    intent_id = uuid.uuid4().hex[:8]
    intent = {
        "id": intent_id,
        "kind": planned.kind,
        "to": planned.to,
        "at": at.isoformat(),
        "expires": (at + timedelta(seconds=expiry_s)).isoformat(),
        "allow_data_loss": planned.allow_data_loss,
        "by": who,
    }
    journal.put(INTENT_KEY, json.dumps(intent))
    journal.record(
        now,
        "operator",
        planned.kind,
        "requested",
        f"{planned.kind} to {planned.to} requested by {who} for {at.isoformat()}",
        intent,
    )
    return intent_id


def pending(journal: RequestStore) -> tuple[str, Intent] | None:
    """The pending intent and its id; an unreadable one is dropped, never left to jam."""
    raw = journal.get(INTENT_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        at = datetime.fromisoformat(data["at"])
        raw_expires = data.get("expires")
        expires = datetime.fromisoformat(raw_expires) if raw_expires else at + timedelta(hours=1)
        intent = Intent(
            str(data["kind"]),
            str(data["to"]),
            at,
            expires,
            bool(data.get("allow_data_loss", False)),
            started=bool(journal.get(RUN_KEY)),
        )
        return str(data.get("id", "")), intent
    except (ValueError, KeyError, TypeError) as exc:
        journal.put(INTENT_KEY, "")
        journal.record(datetime.now(UTC), "intent", "intent", "dropped",
                       f"unreadable intent dropped: {exc}", {"raw": raw[:500]})  # fmt: skip
        return None


def under_way(journal: Journal, requests: RequestStore) -> bool:
    """A planned run is under way: this controller's own, or (in a controller cluster)
    one a leader started and did not finish. Its own steps move DNS, so nothing else may
    take the DNS it finds for a failover to finish."""
    return bool(journal.get(RUN_KEY)) or bool(
        requests.get(STARTED_KEY) and requests.get(INTENT_KEY)
    )


def finish(journal: RequestStore, intent_id: str, status: str, reason: str, now: datetime) -> None:
    """The intent is over (done, aborted, dropped, cancelled): clear it, say how it ended."""
    journal.put(INTENT_KEY, "")
    journal.put(STARTED_KEY, "")
    journal.put(RESULT_KEY, json.dumps({"id": intent_id, "status": status, "reason": reason}))
    journal.record(now, "intent", "intent", status, reason, {"id": intent_id})


def result(journal: RequestStore, intent_id: str) -> dict[str, str] | None:
    raw = journal.get(RESULT_KEY)
    if not raw:
        return None
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()} if data.get("id") == intent_id else None


def cancel(journal: RequestStore, who: str, now: datetime) -> str:
    """Remove the pending intent; one whose run has started is resumed to its end instead."""
    found = pending(journal)
    if found is None:
        raise UsageError("no planned move is pending: nothing to cancel")
    intent_id, intent = found
    if intent.started or journal.get(STARTED_KEY) == intent_id:
        raise UsageError(
            f"{intent.kind} to {intent.to} has started: its journaled steps are carried to "
            "the end (cancelling half-way would leave DNS and the hosts half-moved)"
        )
    reason = f"{intent.kind} to {intent.to} cancelled by {who}"
    finish(journal, intent_id, "cancelled", reason, now)
    return reason


def execute(
    config: MxctlConfig,
    journal: Journal,
    clock: Clock,
    planned: PlannedMove,
    state: ControllerState,
    save_state: Callable[[ControllerState], None],
    intent_id: str = "",
    gate: StepGate | None = None,
    requests: RequestStore | None = None,
    watcher: WaitWatcher | None = None,
) -> tuple[RunResult, ControllerState]:
    """Carry out (or resume) a planned move. The new state is saved before the intent is
    finished (in `requests`, where it was asked for; default the journal): whoever waits
    on the intent then reads the pair as the move left it. With a `watcher` (the watch
    loop), the run's waits keep the controller's cycles going and may stop the move."""
    run_id = (
        journal.get(RUN_KEY) or f"{planned.kind}-{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    )
    journal.put(RUN_KEY, run_id)
    if intent_id:
        (requests or journal).put(STARTED_KEY, intent_id)
    move = move_for(planned, state)
    steps = PlannedSteps(config, clock, journal, run_id, gate, watcher)
    try:
        result = Runner(journal, clock, gate).execute(
            run_id,
            planned.kind,
            move.old_primary,
            move.new_primary,
            steps.planned_steps(planned, move),
        )
        if result.refused:
            # This controller may no longer act (in a cluster: not the leader, or a new
            # term): the intent stays pending, and whoever leads judges it again and runs
            # it from its first step. The run mark goes, or this controller would never
            # again reconcile DNS, adopt a move or keep the backup MX once it leads.
            journal.put(RUN_KEY, "")
            return result, state
        if watcher is not None:  # the failure counts its cycles kept up meanwhile
            state = replace(state, failed_cycles=watcher.state().failed_cycles)
        if result.status == "done":
            new_state = state_after(planned, move, state)
        else:
            new_state, undone = undo_stopped(steps, move, state, result)
            result.error = f"{result.error}; {undone}"
    finally:
        steps.close()
    save_state(new_state)
    journal.put(RUN_KEY, "")
    how = "done" if result.status == "done" else f"aborted at {result.failed_step}: {result.error}"
    if result.steps_failed:
        how += " (but " + "; ".join(result.steps_failed.values()) + ")"
    finish(
        requests or journal,
        intent_id,
        result.status,
        f"{planned.kind} to {planned.to} {how}",
        clock.now(),
    )
    return result, new_state


def undo_stopped(
    steps: PlannedSteps, move: Move, state: ControllerState, result: RunResult
) -> tuple[ControllerState, str]:
    """A move that stopped part-way leaves the pair serving, never half-moved:
    - before DNS moved: the old primary stays, and the TTLs go back on its records (unless
      a failover took precedence: its own rewrite sets the usual TTLs);
    - after DNS moved: the pair is handed to the loop as DNS has it. The new primary is the
      primary, failure counts and all; an old primary this run fenced is unfenced. If the
      new primary is dead, the loop's next cycles fail over back to the old one (no
      anti-flap block: this is the move's undo, not a flap)."""
    journal, run_id = steps.journal, steps.run_id
    events = journal.events(limit=1000, run_id=run_id)
    for_failover = any(
        e.subject == result.failed_step and e.evidence.get("for_failover") for e in events
    )
    now = steps.clock.now()
    if journal.step_status(run_id, DNS_MOVED_STEP) != "done":
        if for_failover or steps.lowered() is None:
            return state, "DNS untouched"
        try:
            done = steps.restore_in_place()
        except Exception as exc:  # never let the undo take the loop down
            why = f"DNS untouched, but the TTLs could not be restored: {exc}"
            journal.record(now, "step", "undo-restore-ttl", "failed", why, {}, run_id)
            log.warning("ALERT: %s", why)
            return state, why
        why = f"DNS untouched; the TTLs are back on {move.old_primary}'s records"
        journal.record(now, "step", "undo-restore-ttl", "done", why, done, run_id)
        return state, why
    fenced = set(state.fenced) - {move.new_primary}
    unfenced = ""
    if journal.step_status(run_id, FENCE_STEP) == "done":
        try:
            fencing.unfence(ssh_target(steps.config, move.old_primary), steps.config.ssh.timeout)
            fenced.discard(move.old_primary)
            unfenced = f"; {move.old_primary}, fenced by this run, unfenced"
        except MxctlError as exc:
            fenced.add(move.old_primary)
            unfenced = f"; {move.old_primary} could not be unfenced: {exc}"
    handed = replace(
        state,
        primary=move.new_primary,
        standby=move.old_primary,
        fenced=frozenset(fenced),
        failover_in_progress=None,
        blocked_until=None,
    )
    why = (
        f"DNS names {move.new_primary}: handed to the loop as the primary, which fails over "
        f"back to {move.old_primary} if it stays dead{unfenced}"
    )
    journal.record(now, "step", "undo-hand-over", "done", why,
                   {"primary": move.new_primary, "fenced": sorted(fenced)}, run_id)  # fmt: skip
    return handed, why
