"""Alert transitions and /health's verdict, from tables (issue 11, deliverable 6)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mxlab.webhooks import WebhookReceiver

from orchestrator.controller.alerts import Alert, AlertBook, transitions
from orchestrator.controller.journal import Journal
from orchestrator.controller.liveness import Busy, liveness

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def keys(alerts: list[Alert]) -> list[str]:
    return [a.key for a in alerts]


def test_an_alert_is_announced_on_entry_and_resolution_once_each() -> None:
    opened, resolved, still = transitions({}, {"standby-dead": Alert("standby-dead", "x")}, NOW)
    assert (keys(opened), keys(resolved)) == (["standby-dead"], [])
    again, gone, still = transitions(still, {"standby-dead": Alert("standby-dead", "y")}, NOW)
    assert (again, gone) == ([], [])  # deduplicated: still open, nothing to say
    assert still["standby-dead"].since == NOW.isoformat()
    opened, resolved, still = transitions(still, {}, NOW)
    assert (keys(opened), keys(resolved), still) == ([], ["standby-dead"], {})


def test_each_failed_attempt_is_announced_again() -> None:
    first = {"failover-aborted": Alert("failover-aborted", "1 failed", 1)}
    _, _, still = transitions({}, first, NOW)
    second = {"failover-aborted": Alert("failover-aborted", "2 failed", 2)}
    opened, resolved, _ = transitions(still, second, NOW)
    assert keys(opened) == ["failover-aborted"] and resolved == []


def test_the_book_posts_each_transition_once_and_remembers_across_restarts(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver()
    journal = Journal(tmp_path / "journal.db")
    lagging = {"replication-lagging": Alert("replication-lagging", "lags 90 s")}
    book = AlertBook(journal, (receiver.url,), 2.0)
    for _ in range(3):
        book.update(lagging, NOW, {"primary": "mx1"})
    book.flush()
    restarted = AlertBook(journal, (receiver.url,), 2.0)  # a new controller process
    restarted.update(lagging, NOW, {"primary": "mx1"})
    restarted.update({}, NOW, {"primary": "mx1"})
    restarted.flush()
    receiver.close()
    assert [(p["alert"], p["state"]) for p in receiver.bodies] == [
        ("replication-lagging", "open"),
        ("replication-lagging", "resolved"),
    ]
    assert receiver.bodies[0]["reason"] == "lags 90 s" and receiver.bodies[0]["primary"] == "mx1"
    statuses = [(e.subject, e.status) for e in journal.events() if e.kind == "alert"]
    assert statuses == [("replication-lagging", "open"), ("replication-lagging", "resolved")]


BUSY = Busy("failover to mx2", since=100.0, budget_s=60.0)
CASES = [
    # (id, now, last completed, recent errors, busy, healthy, words)
    ("cycling", 110.0, 109.0, [None, None], None, True, "cycles complete"),
    ("just started", 2.0, None, [], None, True, "cycles complete"),
    ("never completed", 20.0, None, [], None, False, "since start"),
    ("stalled", 120.0, 110.0, [None], None, False, "no cycle completed for 10 s"),
    ("three cycles raised", 110.0, 109.0, ["boom", "boom", "intent jam"], None, False,
     "last 3 cycles raised; last: intent jam"),
    ("two raised, one fine", 110.0, 109.0, ["boom", None, "boom"], None, True, "complete"),
    ("busy failing over", 130.0, 99.0, [None], BUSY, True, "carrying out failover to mx2"),
    ("busy for too long", 200.0, 99.0, [None], BUSY, False, "no cycle completed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "last", "errors", "busy", "healthy", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_liveness(
    now: float,
    last: float | None,
    errors: list[str | None],
    busy: Busy | None,
    healthy: bool,
    words: str,
) -> None:
    ok, why = liveness(now, 0.0, last, 3.0, errors, 3, busy)
    assert ok is healthy and words in why, why
