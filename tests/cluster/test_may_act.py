"""`may_act` and `fresh_reports`, from tables: the pure rules of the controller cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.cluster.leadership import LeadershipView, Role, may_act
from orchestrator.cluster.member import term_refusal
from orchestrator.cluster.shared_state import fresh_reports
from orchestrator.controller.model import Health

ME = "ctl1"
NOW = 1000.0  # monotonic seconds
MARGIN = 2.0


def lead(valid_until: float | None, term: int = 7, my_term: int | None = 7) -> LeadershipView:
    return LeadershipView(True, ME, term, my_term, valid_until)


CASES = [
    # (view, may act, role, words in the reason)
    (lead(NOW + 9.0), True, Role.LEADER, "leader (term 7, lease 9.0 s left)"),
    (lead(NOW + 2.01), True, Role.LEADER, "lease 2.0 s left"),
    (lead(NOW + 2.0), False, Role.FOLLOWER, "2.00 s left by our clock, not more than the 2.00 s"),
    (lead(NOW + 0.5), False, Role.FOLLOWER, "0.50 s left"),
    (lead(NOW - 3.0), False, Role.FOLLOWER, "0.00 s left"),
    (lead(None), False, Role.FOLLOWER, "no known deadline"),
    # The key names us, but in a later term than the one we won (our lease expired and a
    # new campaign won again): the state we hold may be stale.
    (lead(NOW + 9.0, term=9, my_term=7), False, Role.FOLLOWER, "term 9, but we won term 7"),
    (lead(NOW + 9.0, term=9, my_term=None), False, Role.FOLLOWER, "but we won term None"),
    (LeadershipView(True, "ctl2", 7, None, NOW + 9.0), False, Role.FOLLOWER, "ctl2 leads (term 7)"),
    (LeadershipView(True, None, None, None, NOW + 9.0), False, Role.NO_LEADER, "no controller"),
    # etcd unreachable: never act, even with time left on a lease we won.
    (
        LeadershipView(False, ME, 7, 7, NOW + 9.0, "no etcd member answered"),
        False,
        Role.NO_ETCD,
        "etcd has no quorum for us (no etcd member answered)",
    ),
]


@pytest.mark.parametrize(("view", "allowed", "role", "words"), CASES)
def test_may_act(view: LeadershipView, allowed: bool, role: Role, words: str) -> None:
    verdict = may_act(ME, view, NOW, MARGIN)
    assert (verdict.may_act, verdict.role) == (allowed, role)
    assert words in verdict.reason


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def published(observer: str, age_s: float, mx1: str = "up", lag: float | None = 1.5) -> dict:  # type: ignore[type-arg]
    at = (T0 - timedelta(seconds=age_s)).isoformat()
    hosts = {"mx1": mx1, "mx2": "up"}
    return {"observer": observer, "hosts": hosts, "replication_lag_s": lag, "note": "", "at": at}


def test_fresh_reports_are_votes_and_stale_ones_abstain() -> None:
    reports = fresh_reports(
        [published("ctl3", 30.0, "failed"), published("ctl2", 1.0, "failed")], T0, 10.0
    )
    assert [r.observer for r in reports] == ["ctl2", "ctl3"]
    fresh, stale = reports
    assert fresh.health("mx1") is Health.FAILED and fresh.replication_lag_s == 1.5
    # A stale view is no vote either way, and says why.
    assert stale.health("mx1") is Health.UNKNOWN and stale.health("mx2") is Health.UNKNOWN
    assert stale.replication_lag_s is None
    assert "30 s old (> 10 s)" in stale.note


@pytest.mark.parametrize(
    ("may_act", "run_term", "term", "refused", "why"),
    [
        (True, None, 7, None, "no run under way: the leader acts"),
        (True, 7, 7, None, "the run's own term: go on"),
        (True, 7, 8, "began in term 7", "a new term: another leader may have acted between"),
        (False, 7, 7, "not the leader", "not leading at all: the verdict's own reason"),
        (False, None, None, "not the leader", "no etcd, no run: the verdict's reason"),
    ],
)
def test_term_refusal(
    may_act: bool, run_term: int | None, term: int | None, refused: str | None, why: str
) -> None:
    found = term_refusal(may_act, "not the leader", run_term, term)
    if refused is None:
        assert found is None, why
    else:
        assert found is not None and refused in found, why
