"""A controller killed as a failover finishes: on restart nothing of it runs again.

The run's last step is journaled done, then the finished state and the run key are
written. A crash between any two of those writes must leave the restarted controller
either resuming the same run (every step journaled done: all skipped) or seeing the
failover finished; never a new run that hooks, fences and notifies a second time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import carry_out as carry_out_module
from orchestrator.controller.carry_out import RUN_KEY, carry_out
from orchestrator.controller.decision import Action, decide
from orchestrator.controller.failover import Move
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import (
    ControllerState,
    Health,
    ObserverReport,
    Policy,
    Snapshot,
    state_from_json,
    state_to_json,
)
from orchestrator.controller.runner import Evidence, Step, StepFailed
from tests.fakes import FakeClock

STEPS = ("pre-hooks", "check-new-primary", "fence-old-primary", "rewrite-dns", "verify-dns",
         "post-hooks", "notify")  # fmt: skip
POLICY = Policy(failure_threshold=1, observers=1)
NO_CONFIG = cast(MxctlConfig, None)  # the steps are fakes: nothing reads the config


class Crash(BaseException):
    """Stands for the process dying (SIGKILL) between two durable writes."""


class CountingSteps:
    """The failover's steps by name, each counting the times it acted."""

    acted: ClassVar[dict[str, int]] = {}
    failing: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: MxctlConfig, clock: Clock) -> None:
        pass

    def steps(self, move: Move) -> list[Step]:
        def act(name: str) -> Evidence:
            CountingSteps.acted[name] = CountingSteps.acted.get(name, 0) + 1
            if name in CountingSteps.failing:
                raise StepFailed(f"{name} refused")
            return {}

        return [Step(n, lambda n=n: act(n), n, abort_on_failure=n not in ("post-hooks", "notify"))
                for n in STEPS]  # fmt: skip

    def close(self) -> None:
        pass


def _finished(value: str) -> bool:
    return json.loads(value).get("failover_in_progress") is None


# (id, key written, which value, crash before or after the write lands)
CRASH_POINTS = [
    ("as the finished state is written", "state", _finished, "before"),
    ("just after the finished state is written", "state", _finished, "after"),
    ("just after the run key is cleared", RUN_KEY, lambda v: v == "", "after"),
]


class CrashingJournal(Journal):
    def __init__(self, path: Path, key: str, matches: Any, when: str) -> None:
        super().__init__(path)
        self.crash_on, self.matches, self.when = key, matches, when

    def put(self, key: str, value: str) -> None:
        hit = key == self.crash_on and self.matches(value)
        if hit and self.when == "before":
            raise Crash()
        super().put(key, value)
        if hit:
            raise Crash()


def _cycle(journal: Journal, clock: FakeClock, state: ControllerState) -> ControllerState:
    """One cycle of the loop as far as a failover goes: decide, carry out, save."""

    def save(s: ControllerState) -> None:
        journal.put("state", json.dumps(state_to_json(s)))

    dead = Snapshot(clock.now(), (ObserverReport("controller", {"mx1": Health.FAILED,
                                                                "mx2": Health.UP}),))  # fmt: skip
    decision = decide(dead, state, POLICY, clock.now())
    if decision.action is not Action.FAILOVER:
        save(decision.state)
        return decision.state
    carried = carry_out(NO_CONFIG, journal, clock, POLICY, state, decision, save)
    save(carried.state)
    return carried.state


@pytest.mark.parametrize(
    ("key", "matches", "when"), [c[1:] for c in CRASH_POINTS], ids=[c[0] for c in CRASH_POINTS]
)
def test_a_crash_as_a_failover_finishes_runs_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, matches: Any, when: str
) -> None:
    monkeypatch.setattr(carry_out_module, "FailoverSteps", CountingSteps)
    monkeypatch.setattr(CountingSteps, "acted", {})
    path, clock = tmp_path / "journal.db", FakeClock()
    journal = CrashingJournal(path, key, matches, when)
    with pytest.raises(Crash):
        _cycle(journal, clock, ControllerState("mx1", "mx2"))
    journal.close()
    assert CountingSteps.acted == dict.fromkeys(STEPS, 1)
    events_before = len(Journal(path).events())

    reopened = Journal(path)  # a new controller process
    raw = reopened.get("state")
    assert raw is not None
    state = _cycle(reopened, clock, state_from_json(json.loads(raw)))
    assert CountingSteps.acted == dict.fromkeys(STEPS, 1), "a step acted again after restart"
    started = [e for e in reopened.events()[events_before:] if e.status == "started"]
    assert started == [], f"steps started again: {[e.subject for e in started]}"
    assert (state.primary, state.failover_in_progress) == ("mx2", None)
    assert state.fenced == frozenset({"mx1"})
    # The run key is cleared, or names the run the journal shows finished.
    run_id = reopened.get(RUN_KEY)
    assert not run_id or {r.run_id: r.status for r in reopened.runs()}[run_id] == "done"


def test_a_crash_as_a_failed_attempt_ends_waits_out_its_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt that failed before DNS moved ends its run; killed just after the run key
    is cleared, the restarted controller backs off as the saved state says, and neither
    hooks nor checks again at once."""
    monkeypatch.setattr(carry_out_module, "FailoverSteps", CountingSteps)
    monkeypatch.setattr(CountingSteps, "acted", {})
    monkeypatch.setattr(CountingSteps, "failing", frozenset({"check-new-primary"}))
    path, clock = tmp_path / "journal.db", FakeClock()
    journal = CrashingJournal(path, RUN_KEY, lambda v: v == "", "after")
    with pytest.raises(Crash):
        _cycle(journal, clock, ControllerState("mx1", "mx2"))
    journal.close()
    assert CountingSteps.acted == {"pre-hooks": 1, "check-new-primary": 1}

    reopened = Journal(path)
    raw = reopened.get("state")
    assert raw is not None
    state = _cycle(reopened, clock, state_from_json(json.loads(raw)))
    assert CountingSteps.acted == {"pre-hooks": 1, "check-new-primary": 1}
    assert (state.failover_in_progress, state.failed_attempts) == (None, 1)
