"""The loop's clock: cycle starts on start + k x interval while cycles fit, the next at once
after an overrun, overruns counted (tables, and `run_forever` itself on the injected
clock)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.controller.cadence import next_start, reads_due
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller
from tests.controller.test_loop_local import _config
from tests.fakes import FakeClock

NEXT_START = [
    # (id, started, interval, now, next start, starts gone by)
    ("quick cycle: the next slot", 10.0, 1.0, 10.3, 11.0, 0),
    ("ended exactly on the next slot", 10.0, 1.0, 11.0, 11.0, 0),
    ("ran past one slot: the next begins at once", 10.0, 1.0, 11.5, 11.5, 1),
    ("a failover of 7.2 s: seven slots gone, the next at once", 10.0, 1.0, 17.2, 17.2, 7),
    ("a silent host's 1.05 s: not a 2 s cycle", 10.0, 1.0, 11.05, 11.05, 1),
    ("clock did not move", 10.0, 5.0, 10.0, 15.0, 0),
    ("long interval, a slow SSH read", 0.0, 5.0, 4.9, 5.0, 0),
]


@pytest.mark.parametrize(
    ("started", "interval", "now", "expected", "skipped"),
    [c[1:] for c in NEXT_START],
    ids=[c[0] for c in NEXT_START],
)
def test_next_start(
    started: float, interval: float, now: float, expected: float, skipped: int
) -> None:
    start, gone_by = next_start(started, interval, now)
    assert start == pytest.approx(expected) and gone_by == skipped


def test_reads_are_due_before_the_next_start() -> None:
    assert reads_due(10.0, 1.0) == pytest.approx(10.9)
    assert 100.0 < reads_due(100.0, 5.0) < 105.0


@pytest.mark.parametrize(
    ("now", "due", "why"),
    [
        (10.0, 10.9, "reads begin with the cycle: the grid's deadline"),
        (10.4, 10.9, "a little work first: the grid's deadline still leaves 0.5 s"),
        (10.6, 11.05, "more than half the window gone: half a window from now"),
        (12.5, 12.95, "an etcd check that waited 2.5 s: the probes still get 0.45 s"),
    ],
)
def test_reads_always_get_half_their_window(now: float, due: float, why: str) -> None:
    # A probe unanswered at the deadline fails: a deadline already past would vote every
    # host failed because this controller was slow.
    assert reads_due(10.0, 1.0, now) == pytest.approx(due), why


class FakeStop(threading.Event):
    """Waiting advances the fake clock instead of sleeping; stops after `cycles` waits."""

    def __init__(self, clock: FakeClock, cycles: int) -> None:
        super().__init__()
        self.clock, self.left = clock, cycles
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.clock.advance(timeout or 0.0)
        self.left -= 1
        if self.left <= 0:
            self.set()
        return self.is_set()


def test_run_forever_keeps_the_grid_follows_an_overrun_at_once_and_counts_it(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    text = _config(tmp_path, standby_observer=False)
    config = parse_config(text, tmp_path / "mxctl.toml", {"TSIG": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    controller = Controller(config, Journal(tmp_path / "journal.db"), clock)
    costs = iter([0.3, 2.5, 0.2, 0.95])  # the second cycle runs past two starts
    starts: list[float] = []

    def cycle() -> str:
        starts.append(clock.monotonic())
        clock.advance(next(costs))
        return "done"

    controller.cycle = cycle  # type: ignore[method-assign]
    controller.run_forever(FakeStop(clock, 4))
    assert starts == pytest.approx([0.0, 1.0, 3.5, 4.5])
    overruns = controller.metrics.registry.get_sample_value("mxctl_cycle_overruns_total")
    assert overruns == 2
