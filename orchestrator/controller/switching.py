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
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState
from orchestrator.controller.planned import PlannedMove, PlannedSteps, move_for, state_after
from orchestrator.controller.runner import Runner, RunResult
from orchestrator.errors import MxctlError

INTENT_KEY = "intent.planned"
RUN_KEY = "run.planned"


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


def request(journal: Journal, planned: PlannedMove, at: datetime, who: str, now: datetime) -> None:
    intent = {
        "kind": planned.kind,
        "to": planned.to,
        "at": at.isoformat(),
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


def pending(journal: Journal) -> tuple[PlannedMove, datetime] | None:
    raw = journal.get(INTENT_KEY)
    if not raw:
        return None
    intent = json.loads(raw)
    planned = PlannedMove(intent["kind"], intent["to"], bool(intent["allow_data_loss"]))
    return planned, datetime.fromisoformat(intent["at"])


def execute(
    config: MxctlConfig,
    journal: Journal,
    clock: Clock,
    planned: PlannedMove,
    state: ControllerState,
) -> tuple[RunResult, ControllerState]:
    """Carry out (or resume) a planned move; the intent is cleared when it ends."""
    run_id = (
        journal.get(RUN_KEY) or f"{planned.kind}-{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    )
    journal.put(RUN_KEY, run_id)
    move = move_for(planned, state)
    steps = PlannedSteps(config, clock, journal, run_id)
    try:
        result = Runner(journal, clock).execute(
            run_id,
            planned.kind,
            move.old_primary,
            move.new_primary,
            steps.planned_steps(planned, move),
        )
    finally:
        steps.close()
    journal.put(RUN_KEY, "")
    journal.put(INTENT_KEY, "")
    new_state = state_after(planned, move, state) if result.status == "done" else state
    return result, new_state
