"""The failover decision, from tables (Patroni's quorum tests are the model)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.controller.decision import (
    Action,
    Decision,
    Outcome,
    backoff_s,
    decide,
    failover_failed,
    failover_finished,
)
from orchestrator.controller.model import (
    ControllerState,
    Health,
    MaintenanceWindow,
    ObserverReport,
    Policy,
    Snapshot,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UP, FAILED, UNKNOWN = Health.UP, Health.FAILED, Health.UNKNOWN
POLICY = Policy(failure_threshold=3, observers=3, max_replication_lag_s=60, anti_flap_s=3600)
BASE = ControllerState(primary="mx1", standby="mx2")


def snap(*views: tuple[Health, Health], lag: float | None = None) -> Snapshot:
    """One report per observer: (health of mx1, health of mx2)."""
    names = ["controller", "witness-a", "witness-b"]
    reports = tuple(
        ObserverReport(names[i], {"mx1": p, "mx2": s}, replication_lag_s=lag)
        for i, (p, s) in enumerate(views)
    )
    return Snapshot(NOW, reports)


def run_cycles(snapshot: Snapshot, cycles: int, state: ControllerState = BASE) -> Decision:
    decision = decide(snapshot, state, POLICY, NOW)
    for _ in range(cycles - 1):
        decision = decide(snapshot, decision.state, POLICY, NOW)
    return decision


CASES = [
    # (id, snapshot, cycles, state, outcome, action, words in the reason)
    ("all up", snap((UP, UP), (UP, UP), (UP, UP)), 5, BASE, Outcome.HEALTHY, Action.NONE,
     "primary mx1 healthy"),
    ("primary failed by all, first cycle", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)),
     1, BASE, Outcome.PRIMARY_FAILING, Action.NONE, "1 of 3 cycles"),
    ("primary dead by all, threshold reached", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)),
     3, BASE, Outcome.PRIMARY_DEAD, Action.FAILOVER, "promoting mx2"),
    ("primary dead by 2 of 3", snap((FAILED, UP), (FAILED, UP), (UP, UP)), 3, BASE,
     Outcome.PRIMARY_DEAD, Action.FAILOVER, "by 2 of 3 voting observers"),
    ("only the controller loses the primary", snap((FAILED, UP), (UP, UP), (UP, UP)), 10, BASE,
     Outcome.PRIMARY_UNREACHABLE, Action.NONE, "unreachable, not dead"),
    ("controller loses it, witnesses silent", snap((FAILED, UP), (UNKNOWN, UNKNOWN),
     (UNKNOWN, UNKNOWN)), 10, BASE, Outcome.NO_QUORUM, Action.ALERT, "only 1 of 3"),
    ("standby down", snap((UP, FAILED), (UP, FAILED), (UP, FAILED)), 3, BASE,
     Outcome.STANDBY_DEAD, Action.ALERT, "standby mx2 failed"),
    ("both down", snap((FAILED, FAILED), (FAILED, FAILED), (FAILED, FAILED)), 3, BASE,
     Outcome.BOTH_DEAD, Action.ALERT, "standby mx2 is down too"),
    ("paused", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3, replace(BASE, paused=True),
     Outcome.PAUSED, Action.ALERT, "automation is paused"),
    ("maintenance window of the primary",
     snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, maintenance=(MaintenanceWindow("mx1", NOW - timedelta(minutes=5),
                                                  NOW + timedelta(minutes=55)),)),
     Outcome.MAINTENANCE, Action.NONE, "maintenance window"),
    ("window over", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, maintenance=(MaintenanceWindow("mx1", NOW - timedelta(hours=2),
                                                  NOW - timedelta(hours=1)),)),
     Outcome.PRIMARY_DEAD, Action.FAILOVER, "promoting mx2"),
    ("anti-flap block", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, blocked_until=NOW + timedelta(minutes=10)),
     Outcome.BLOCKED, Action.ALERT, "mxctl ack"),
    ("anti-flap block expired", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, blocked_until=NOW - timedelta(seconds=1)),
     Outcome.PRIMARY_DEAD, Action.FAILOVER, "promoting mx2"),
    ("standby lagging", snap((FAILED, UP), (FAILED, UP), (FAILED, UP), lag=900), 3, BASE,
     Outcome.STANDBY_LAGGING, Action.ALERT, "lags 900 s > 60 s"),
    ("interrupted failover resumes", snap((UP, UP), (UP, UP), (UP, UP)), 1,
     replace(BASE, failover_in_progress="mx2"),
     Outcome.RESUME_FAILOVER, Action.FAILOVER, "resuming the unfinished failover to mx2"),
    # Paused: no automatic action at all, said in the reason (the alert carries it).
    ("paused: an interrupted failover is not resumed", snap((UP, UP), (UP, UP), (UP, UP)), 1,
     replace(BASE, failover_in_progress="mx2", paused=True), Outcome.PAUSED, Action.ALERT,
     "failover to mx2 is unfinished, but automation is paused"),
    ("paused: an interrupted failover in backoff is still paused", snap((UP, UP)), 1,
     replace(BASE, failover_in_progress="mx2", paused=True, failed_attempts=1,
             retry_at=NOW + timedelta(seconds=10)),
     Outcome.PAUSED, Action.ALERT, "`mxctl resume`"),
    ("paused and blocked: the pause is what holds it", snap((FAILED, UP), (FAILED, UP),
     (FAILED, UP)), 3, replace(BASE, paused=True, blocked_until=NOW + timedelta(minutes=10)),
     Outcome.PAUSED, Action.ALERT, "primary mx1 dead for 3 cycles"),
    ("paused, primary healthy: nothing held back", snap((UP, UP), (UP, UP), (UP, UP)), 3,
     replace(BASE, paused=True), Outcome.HEALTHY, Action.NONE, "healthy"),
    # A lost observer neither blocks nor causes a failover.
    ("witness lost: controller and standby agree", snap((FAILED, UP), (FAILED, UP),
     (UNKNOWN, UNKNOWN)), 3, BASE, Outcome.PRIMARY_DEAD, Action.FAILOVER,
     "2 of 2 voting observers (witness-b abstain)"),
    ("witness lost: standby still sees the primary", snap((FAILED, UP), (UP, UP),
     (UNKNOWN, UNKNOWN)), 10, BASE, Outcome.PRIMARY_UNREACHABLE, Action.NONE,
     "unreachable, not dead"),
    ("witness lost and unreported", snap((FAILED, UP), (FAILED, UP)), 3, BASE,
     Outcome.PRIMARY_DEAD, Action.FAILOVER, "1 unreported abstain"),
    ("two observers lost: the controller alone never decides", snap((FAILED, UP),
     (UNKNOWN, UNKNOWN), (UNKNOWN, UNKNOWN)), 10, BASE, Outcome.NO_QUORUM, Action.ALERT,
     "2 needed"),
    ("failed attempt: backing off", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, failed_attempts=2, retry_at=NOW + timedelta(seconds=20)),
     Outcome.BACKING_OFF, Action.ALERT, "attempt 2 failed; next attempt at"),
    ("failed attempt: backoff over", snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3,
     replace(BASE, failed_attempts=2, retry_at=NOW - timedelta(seconds=1)),
     Outcome.PRIMARY_DEAD, Action.FAILOVER, "promoting mx2"),
    ("a fenced standby is not an alert", snap((UP, FAILED), (UP, FAILED), (UP, FAILED)), 3,
     replace(BASE, fenced=frozenset({"mx2"})), Outcome.HEALTHY, Action.NONE, "is fenced"),
    ("the primary serves again: the failed attempts are over", snap((UP, UP), (UP, UP)), 1,
     replace(BASE, failed_attempts=3, retry_at=NOW + timedelta(seconds=20)),
     Outcome.HEALTHY, Action.NONE, "healthy"),
    ("unfinished failover waits its backoff", snap((UP, UP), (UP, UP), (UP, UP)), 1,
     replace(BASE, failover_in_progress="mx2", failed_attempts=1,
             retry_at=NOW + timedelta(seconds=10)),
     Outcome.BACKING_OFF, Action.ALERT, "failover to mx2 is unfinished"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("snapshot", "cycles", "state", "outcome", "action", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(
    snapshot: Snapshot,
    cycles: int,
    state: ControllerState,
    outcome: Outcome,
    action: Action,
    words: str,
) -> None:
    decision = run_cycles(snapshot, cycles, state)
    assert decision.outcome is outcome
    assert decision.action is action
    assert words in decision.reason


def test_failures_must_be_consecutive() -> None:
    dead = snap((FAILED, UP), (FAILED, UP), (FAILED, UP))
    healthy = snap((UP, UP), (UP, UP), (UP, UP))
    state = BASE
    for snapshot in (dead, dead, healthy, dead, dead):
        decision = decide(snapshot, state, POLICY, NOW)
        state = decision.state
    assert decision.outcome is Outcome.PRIMARY_FAILING
    assert state.failures("mx1") == 2


def test_failover_sets_the_block_and_marks_the_promotion_in_progress() -> None:
    decision = run_cycles(snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3)
    assert decision.promote == "mx2"
    assert decision.state.failover_in_progress == "mx2"
    assert decision.state.blocked_until == NOW + timedelta(seconds=3600)


def test_after_failover_roles_swap_and_the_old_primary_is_fenced() -> None:
    decision = run_cycles(snap((FAILED, UP), (FAILED, UP), (FAILED, UP)), 3)
    done = failover_finished(decision.state)
    assert (done.primary, done.standby) == ("mx2", "mx1")
    assert done.fenced == frozenset({"mx1"})
    assert done.failover_in_progress is None
    # A host fenced earlier and now promoted leaves the fenced set.
    again = failover_finished(replace(done, failover_in_progress="mx1"))
    assert (again.primary, again.fenced) == ("mx1", frozenset({"mx2"}))
    # The old primary coming back changes nothing: mx2 stays primary, no new failover.
    back = decide(snap((UP, UP), (UP, UP), (UP, UP)), done, POLICY, NOW)
    assert back.outcome is Outcome.HEALTHY and back.state.primary == "mx2"


def test_flapping_primary_fails_over_at_most_once() -> None:
    mx1_down = snap((FAILED, UP), (FAILED, UP), (FAILED, UP))
    all_up = snap((UP, UP), (UP, UP), (UP, UP))
    mx2_down = snap((UP, FAILED), (UP, FAILED), (UP, FAILED))
    # 40 cycles of 2 down / 2 up, then mx1 down for good, then the new primary dies too.
    script = [mx1_down if (c // 2) % 2 == 0 else all_up for c in range(40)]
    script += [mx1_down] * 10 + [mx2_down] * 10
    state, failovers = BASE, []
    for cycle, snapshot in enumerate(script):
        decision = decide(snapshot, state, POLICY, NOW + timedelta(seconds=cycle))
        state = decision.state
        if decision.action is Action.FAILOVER:
            failovers.append(cycle)
            state = failover_finished(state)
    assert failovers == [42]  # flaps never reach 3 cycles; one failover, then blocked
    assert decision.outcome is Outcome.BLOCKED


BACKOFF = Policy(observers=3, retry_base_s=10, retry_cap_s=60)


@pytest.mark.parametrize(
    ("attempts", "delay"), [(0, 0), (1, 10), (2, 20), (3, 40), (4, 60), (50, 60)]
)
def test_failed_attempts_back_off_exponentially_up_to_the_cap(attempts: int, delay: float) -> None:
    assert backoff_s(attempts, BACKOFF) == delay


def test_a_failed_attempt_before_dns_moved_is_rolled_back_after_it_finishes_forward() -> None:
    attempted = replace(BASE, failover_in_progress="mx2", blocked_until=NOW + timedelta(hours=1))
    before_dns = failover_failed(BASE, attempted, dns_moved=False, policy=BACKOFF, now=NOW)
    assert before_dns.failover_in_progress is None and before_dns.blocked_until is None
    assert (before_dns.failed_attempts, before_dns.retry_at) == (1, NOW + timedelta(seconds=10))
    second = failover_failed(BASE, replace(before_dns, failover_in_progress="mx2"),
                             dns_moved=True, policy=BACKOFF, now=NOW)  # fmt: skip
    assert second.failover_in_progress == "mx2"  # DNS moved: finished forward, never undone
    assert (second.failed_attempts, second.retry_at) == (2, NOW + timedelta(seconds=20))
    assert failover_finished(second).failed_attempts == 0
