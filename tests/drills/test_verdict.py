"""A failover drill's verdict and figures, from what was measured (pure), and its record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from orchestrator.controller.journal import Journal
from orchestrator.drills import record
from orchestrator.drills.mailflow import Attempt
from orchestrator.drills.verdict import phase_seconds, verdict
from tests.fakes import FakeClock

AT = "2026-11-30T12:00:00+00:00"
DONE = {"switchover": (True, 40.0), "switchback": (True, 35.0)}


def attempts(*accepted: bool, every: float = 0.5, takes: float = 0.1) -> list[Attempt]:
    """One attempt starting every `every` s, each taking `takes` s."""
    return [Attempt(f"t{i}", i * every, i * every + takes, ok, "mx1.example.test")
            for i, ok in enumerate(accepted)]  # fmt: skip


def silent(accepted_before: int, failed: int, takes: float) -> list[Attempt]:
    """Accepted attempts, then `failed` ones that each wait out a `takes` s timeout (a
    silent host: the next starts when the last gave up), then one accepted."""
    tries = attempts(*[True] * accepted_before)
    t = tries[-1].ended + 0.4
    for i in range(failed):
        tries.append(Attempt(f"f{i}", t, t + takes, False, "mx1.example.test", "TimeoutError"))
        t += takes
    tries.append(Attempt("back", t, t + 0.1, True, "mx2.example.test"))
    return tries


@pytest.mark.parametrize(
    ("moves", "tries", "delivered", "result", "why"),
    [
        (DONE, attempts(True, True, True), {"t0", "t1", "t2"}, "passed", "mail not accepted for 0"),
        (DONE, attempts(True, False, True), {"t0", "t2"}, "passed", "not accepted for 0.9 s"),
        (DONE, attempts(True, True), {"t0"}, "failed", "1 accepted messages lost"),
        (DONE, attempts(True, *[False] * 12, True), {"t0", "t13"}, "failed",
         "not accepted for 6.4 s (> 5.0 s)"),
        # A 60 s silent outage: 10 attempts of 6 s each. Counting attempts x interval said
        # 5 s, and passed.
        (DONE, silent(1, 10, 6.0), {"t0", "back"}, "failed",
         "not accepted for 60.4 s (> 5.0 s)"),
        ({"switchover": (False, 3.0)}, attempts(True), {"t0"}, "failed",
         "switchover did not complete"),
        (DONE, attempts(False, False), set(), "failed", "no message was accepted"),
    ],
)  # fmt: skip
def test_verdict(
    moves: dict[str, tuple[bool, float]],
    tries: list[Attempt],
    delivered: set[str],
    result: str,
    why: str,
) -> None:
    r = verdict(AT, moves, 1.5, tries, delivered, 5.0)
    assert r.result == result and why in r.why, r.why
    assert r.messages_lost == len({a.token for a in tries if a.accepted} - delivered)


def test_phase_seconds_from_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    t = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    journal.record(t, "step", "converge", "started", "", run_id="r1")
    journal.record(t.replace(second=3), "step", "converge", "done", "", run_id="r1")
    journal.record(t.replace(second=9), "step", "converge", "done", "", run_id="r2")
    events = journal.events()
    assert phase_seconds(events, "r1", "converge") == 3.0
    assert phase_seconds(events, "r2", "converge") == 0.0
    journal.close()


def test_a_failed_drill_is_recorded_alerted_and_exported(tmp_path: Path) -> None:
    config = SimpleNamespace(pair=SimpleNamespace(state_dir=tmp_path),
                             notify=SimpleNamespace(webhooks=(), timeout=1.0))  # fmt: skip
    clock = FakeClock(datetime(2026, 11, 30, 12, 10, tzinfo=UTC))
    journal = Journal(tmp_path / "journal.db")
    result = verdict(AT, DONE, 2.0, attempts(True, True), {"t0"}, 5.0)
    record.record(config, journal, result, clock)  # type: ignore[arg-type]
    kinds = [(e.kind, e.status) for e in journal.events()]
    assert ("drill", "failed") in kinds and ("alert", "failed") in kinds
    registry = CollectorRegistry()
    registry.register(record.DrillCollector(tmp_path, clock))
    text = generate_latest(registry).decode()
    assert "mxctl_failover_drill_passed 0.0" in text
    assert "mxctl_failover_drill_messages_lost 1.0" in text
    assert "mxctl_failover_drill_age_seconds 600.0" in text
    last = record.last_result(tmp_path)
    assert last is not None and last["lost"] == ["t1"]
    journal.close()
