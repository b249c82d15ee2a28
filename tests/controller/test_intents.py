"""Planned moves judged against the state as it is now (issue 11, deliverable 5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.controller import switching
from orchestrator.controller.intents import Intent, IntentVerdict, intent_problem, judge
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState
from orchestrator.controller.planned import PlannedMove
from orchestrator.errors import UsageError

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOME = ControllerState("mx1", "mx2")
FAILED_OVER = ControllerState("mx2", "mx1", fenced=frozenset({"mx1"}))
SWITCHED = ControllerState("mx2", "mx1", fenced=frozenset({"mx1"}))
MID_FAILOVER = replace(HOME, failover_in_progress="mx2")


def intent(kind: str, to: str, at: datetime = NOW, started: bool = False) -> Intent:
    return Intent(kind, to, at, at + HOUR, started=started)


RUN, WAIT, DROP = IntentVerdict.RUN, IntentVerdict.WAIT, IntentVerdict.DROP
CASES = [
    # (id, intent, state, now, target failing, verdict, words in the reason)
    ("due switchover", intent("switchover", "mx2"), HOME, NOW, False, RUN, "due"),
    ("not yet due", intent("switchover", "mx2", NOW + HOUR), HOME, NOW, False, WAIT, "due at"),
    ("failover moved mail there before 03:00", intent("switchover", "mx2"), FAILED_OVER, NOW,
     False, DROP, "already the primary"),
    ("switchover onto the fenced old primary", intent("switchover", "mx1"), FAILED_OVER, NOW,
     False, DROP, "is fenced"),
    ("expired", intent("switchover", "mx2"), HOME, NOW + 2 * HOUR, False, DROP, "expired"),
    ("target fails its probes when due", intent("switchover", "mx2"), HOME, NOW, True, DROP,
     "fails its probes"),
    ("failover in progress: wait", intent("switchover", "mx2"), MID_FAILOVER, NOW, False, WAIT,
     "failover in progress"),
    ("host not in the pair", intent("switchover", "mx9"), HOME, NOW, False, DROP,
     "not in the pair"),
    ("switchback after a switchover", intent("switchback", "mx1"), SWITCHED, NOW, False, RUN,
     "due"),
    ("switchback to the fenced host (its probes fail: it is fenced)", intent("switchback",
     "mx1"), SWITCHED, NOW, True, RUN, "due"),
    ("switchback with nothing to do", intent("switchback", "mx1"), HOME, NOW, False, DROP,
     "nothing to switch back"),
    ("an interrupted run resumes even past expiry", intent("switchover", "mx2", started=True),
     HOME, NOW + 2 * HOUR, False, RUN, "resuming"),
    ("an interrupted run waits for a failover", intent("switchover", "mx2", started=True),
     MID_FAILOVER, NOW, False, WAIT, "failover in progress"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("intent_", "state", "now", "failing", "verdict", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_judge(
    intent_: Intent,
    state: ControllerState,
    now: datetime,
    failing: bool,
    verdict: IntentVerdict,
    words: str,
) -> None:
    got, reason = judge(intent_, state, now, failing)
    assert got is verdict, reason
    assert words in reason


def test_a_move_that_cannot_apply_is_refused_when_requested(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    with pytest.raises(UsageError, match="already the primary"):
        switching.request(journal, PlannedMove("switchover", "mx2"), NOW, "ops", NOW,
                          FAILED_OVER, 3600)  # fmt: skip
    assert switching.pending(journal) is None
    assert journal.events()[-1].status == "refused"
    assert intent_problem("switchover", "mx2", HOME) is None


def test_cancel_removes_a_pending_intent_and_says_so(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    intent_id = switching.request(journal, PlannedMove("switchover", "mx2"), NOW + HOUR, "ops",
                                  NOW, HOME, 3600)  # fmt: skip
    found = switching.pending(journal)
    assert found is not None and found[0] == intent_id
    assert found[1].expires == NOW + 2 * HOUR
    switching.cancel(journal, "ops", NOW)
    assert switching.pending(journal) is None
    assert switching.result(journal, intent_id) == {
        "id": intent_id,
        "status": "cancelled",
        "reason": "switchover to mx2 cancelled by ops",
    }
    with pytest.raises(UsageError, match="nothing to cancel"):
        switching.cancel(journal, "ops", NOW)


def test_an_unreadable_intent_is_dropped_not_left_to_jam(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    journal.put(switching.INTENT_KEY, '{"kind": "switchover"}')
    assert switching.pending(journal) is None
    assert journal.get(switching.INTENT_KEY) == ""
    assert journal.events()[-1].status == "dropped"
