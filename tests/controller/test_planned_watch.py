"""A planned move that waits keeps the controller watching, and stops when the world says so.

The rules are pure (`wait_verdict`, `commit_blocker`), tested from tables; the watch and
the run's pauses are tested together with the fake clock: a wait of a minute runs one
watch cycle per interval, and a target that dies (or a primary whose failover is due)
ends the wait within the cycles that tell it, not at the wait's end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.controller.decision import Action, Decision, Outcome
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState
from orchestrator.controller.planned import PlannedSteps
from orchestrator.controller.planned_watch import (
    Preempted,
    RunWatch,
    Stop,
    WatchingClock,
    commit_blocker,
    wait_verdict,
)
from tests.fakes import FakeClock

from .test_config import DNS

MX1, MX2 = "mx1.example.test", "mx2.example.test"
THRESHOLD = 3


def _decision(
    outcome: Outcome, mx1_failed: int, mx2_failed: int, promote: str | None = None
) -> Decision:
    action = Action.FAILOVER if promote else Action.NONE
    state = ControllerState(MX1, MX2, {MX1: mx1_failed, MX2: mx2_failed})
    return Decision(outcome, action, f"{outcome.value} (test)", state, promote)


# (decision, dns_moved, expected: None | (for_failover, words in the reason), why)
VERDICTS = [
    (_decision(Outcome.HEALTHY, 0, 0), False, None, "all well: the wait goes on"),
    (_decision(Outcome.STANDBY_DEAD, 0, 1), False, None, "one failed cycle is no death yet"),
    (_decision(Outcome.STANDBY_DEAD, 0, 2), True, None, "below the threshold after DNS too"),
    (
        _decision(Outcome.STANDBY_DEAD, 0, 3),
        False,
        (False, "before DNS moved"),
        "the target died during the TTL wait: stop before DNS moves",
    ),
    (
        _decision(Outcome.STANDBY_DEAD, 0, 4),
        True,
        (False, "DNS already names it"),
        "the target died during the hold: stop, hand the pair back",
    ),
    (
        _decision(Outcome.PRIMARY_DEAD, 3, 0, promote=MX2),
        False,
        (True, "failover takes precedence"),
        "the old primary died during the wait: the failover goes at once",
    ),
    (
        _decision(Outcome.PRIMARY_DEAD, 3, 0, promote=MX2),
        True,
        None,
        "the old primary died after DNS moved: the move already took mail away from it",
    ),
    (
        _decision(Outcome.PRIMARY_FAILING, 2, 0),
        False,
        None,
        "a failing old primary below the threshold: not yet",
    ),
    (
        _decision(Outcome.BOTH_DEAD, 3, 3),
        False,
        (False, "failed for 3 cycles"),
        "both dead: no failover, and the move has nowhere to go",
    ),
    (
        _decision(Outcome.NO_QUORUM, 0, 0),
        False,
        None,
        "too few observers: nothing is known to be wrong with the target",
    ),
]


@pytest.mark.parametrize(("decision", "dns_moved", "expected", "why"), VERDICTS)
def test_wait_verdict(
    decision: Decision, dns_moved: bool, expected: tuple[bool, str] | None, why: str
) -> None:
    stop = wait_verdict(decision, MX2, dns_moved, THRESHOLD)
    if expected is None:
        assert stop is None, why
        return
    assert stop is not None, why
    assert stop.for_failover is expected[0], why
    assert expected[1] in stop.reason, why


@pytest.mark.parametrize(
    ("failed", "problems", "blocked", "why"),
    [
        (0, [], None, "passed the last cycle and serves now: commit"),
        (1, [], "failed the last 1 cycle", "one failed cycle is enough to stop a commit"),
        (0, ["smtp: refused"], "no longer serves: smtp: refused", "the fresh probe fails"),
        (2, ["imaps: timeout"], "failed the last 2", "both: the watch's word comes first"),
    ],
)
def test_commit_blocker(failed: int, problems: list[str], blocked: str | None, why: str) -> None:
    found = commit_blocker(MX2, failed, problems)
    if blocked is None:
        assert found is None, why
    else:
        assert found is not None and blocked in found, why


class Script:
    """The controller's watch cycle, as a script of decisions (one per tick)."""

    def __init__(self, decisions: list[Decision]) -> None:
        self.decisions, self.calls = decisions, 0

    def __call__(self, state: ControllerState) -> Decision:
        found = self.decisions[min(self.calls, len(self.decisions) - 1)]
        self.calls += 1
        return found


def _steps(tmp_path: Path, watch: RunWatch, clock: FakeClock) -> PlannedSteps:
    config = parse_config(DNS, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    return PlannedSteps(config, clock, Journal(tmp_path / "j.db"), "run-1", None, watch)


def test_a_long_wait_ticks_the_watch_once_an_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    script = Script([_decision(Outcome.HEALTHY, 0, 0)])
    watch = RunWatch(script, ControllerState(MX1, MX2), MX2, lambda: False, clock, 1.0, 3)
    steps = _steps(tmp_path, watch, clock)
    steps._pause(60.0, "wait-old-ttl")
    assert 58 <= script.calls <= 61  # one watch cycle a second, the whole minute
    assert clock.monotonic() == pytest.approx(60.0)
    assert watch.stop() is None


def test_a_target_that_dies_ends_the_wait_within_its_threshold(tmp_path: Path) -> None:
    clock = FakeClock()
    healthy = [_decision(Outcome.HEALTHY, 0, 0)] * 5
    dying = [_decision(Outcome.STANDBY_DEAD, 0, n) for n in (1, 2, 3)]
    script = Script(healthy + dying)
    watch = RunWatch(script, ControllerState(MX1, MX2), MX2, lambda: False, clock, 1.0, 3)
    steps = _steps(tmp_path, watch, clock)
    with pytest.raises(Preempted, match=r"mx2\.example\.test failed for 3 cycles"):
        steps._pause(300.0, "wait-old-ttl")
    assert script.calls == 8
    assert clock.monotonic() <= 9.0  # stopped at once, not after the 300 s wait
    assert watch.failures(MX2) == 3
    assert watch.state().failures(MX2) == 3  # the counts go on into the loop's next cycle


def test_a_primary_that_dies_during_the_wait_hands_over_to_a_failover(tmp_path: Path) -> None:
    clock = FakeClock()
    failing = [_decision(Outcome.PRIMARY_FAILING, n, 0) for n in (1, 2)]
    dead = _decision(Outcome.PRIMARY_DEAD, 3, 0, promote=MX2)
    watch = RunWatch(Script([*failing, dead]), ControllerState(MX1, MX2), MX2,
                     lambda: False, clock, 1.0, 3)  # fmt: skip
    steps = _steps(tmp_path, watch, clock)
    with pytest.raises(Preempted) as raised:
        steps._pause(300.0, "wait-old-ttl")
    assert raised.value.evidence == {"for_failover": True}
    assert watch.stop() == Stop(f"a failover takes precedence: {dead.reason}", True)
    assert watch.state().failures(MX1) == 3


def test_a_watch_cycle_that_raises_does_not_break_the_run(tmp_path: Path) -> None:
    clock = FakeClock()

    def broken(state: ControllerState) -> Decision:
        raise RuntimeError("probe pool gone")

    watch = RunWatch(broken, ControllerState(MX1, MX2), MX2, lambda: False, clock, 1.0, 3)
    WatchingClock(clock, watch, 1.0).sleep(5.0)
    assert watch.stop() is None and watch.ticks == 0
    assert watch.failures(MX2) == 0


def test_no_tick_before_the_first_interval_and_none_twice_on_the_grid() -> None:
    clock = FakeClock()
    script = Script([_decision(Outcome.HEALTHY, 0, 0)])
    watch = RunWatch(script, ControllerState(MX1, MX2), MX2, lambda: False, clock, 2.0, 3)
    watch.tick()
    assert script.calls == 0  # the loop's own cycle just ran
    clock.advance(2.0)
    watch.tick()
    watch.tick()
    assert script.calls == 1
    clock.advance(7.0)  # a long provider call: one tick now, the grid goes on from here
    watch.tick()
    watch.tick()
    assert script.calls == 2


def test_a_fenced_targets_old_failures_do_not_count_against_the_move() -> None:
    """A switchback's target failed every cycle while fenced; the move unfences it first,
    so one more failed cycle right after is one, not a streak past the threshold."""
    clock = FakeClock()
    fenced = ControllerState(MX1, MX2, {MX2: 40}, fenced=frozenset({MX2}))
    seen: list[int] = []

    def cycle(state: ControllerState) -> Decision:
        seen.append(state.failures(MX2))
        return _decision(Outcome.STANDBY_DEAD, 0, state.failures(MX2) + 1)

    watch = RunWatch(cycle, fenced, MX2, lambda: False, clock, 1.0, 3)
    clock.advance(1.0)
    watch.tick()
    assert seen == [0] and watch.stop() is None and watch.failures(MX2) == 1
