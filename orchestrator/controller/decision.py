"""The pure failover decision: `decide(snapshot, state, policy, now) -> Decision`.

No I/O, no clock: everything the decision needs comes in as arguments, so every branch is
tested from a table and every past decision can be replayed from the journal. Each outcome
carries one sentence saying what was decided and why (Patroni style), and the
vocabulary follows GitHub's orchestrator: a primary is DEAD only when a majority of
observers agree for N consecutive cycles; when only some observers lose it, it is
UNREACHABLE and nothing is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from orchestrator.controller.model import ControllerState, Policy, Snapshot
from orchestrator.controller.quorum import host_votes


class Outcome(Enum):
    HEALTHY = "healthy"
    PRIMARY_FAILING = "primary-failing"  # failed by quorum, below the threshold so far
    PRIMARY_UNREACHABLE = "primary-unreachable"  # some observers lose it, no quorum
    PRIMARY_DEAD = "primary-dead"  # -> fail over
    RESUME_FAILOVER = "resume-failover"  # an interrupted failover must be finished
    STANDBY_DEAD = "standby-dead"  # -> alert only
    STANDBY_LAGGING = "standby-lagging"  # primary dead but promotion gated by lag
    BOTH_DEAD = "both-dead"  # -> no DNS change, alert
    BLOCKED = "blocked-anti-flap"  # primary dead, but a recent failover is unacknowledged
    PAUSED = "paused"
    MAINTENANCE = "maintenance"
    NO_QUORUM = "no-quorum"  # too few observers reported at all
    BACKING_OFF = "backing-off"  # the last failover attempt failed; the next waits


class Action(Enum):
    NONE = "none"
    ALERT = "alert"
    FAILOVER = "failover"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    action: Action
    reason: str
    state: ControllerState  # the state to carry into the next cycle
    promote: str | None = None  # the host to promote when action is FAILOVER


def _count_failures(snapshot: Snapshot, state: ControllerState, policy: Policy) -> dict[str, int]:
    """Consecutive cycles in which a quorum of observers saw each host failed."""
    counts = {}
    for host in (state.primary, state.standby):
        votes = host_votes(snapshot, host, policy.observers, primary=host == state.primary)
        counts[host] = state.failures(host) + 1 if votes.failed_by_quorum else 0
    return counts


def backoff_s(failed_attempts: int, policy: Policy) -> float:
    """Capped exponential: base, 2 x base, 4 x base ... never more than the cap."""
    if failed_attempts <= 0:
        return 0.0
    return float(min(policy.retry_cap_s, policy.retry_base_s * 2 ** min(failed_attempts - 1, 30)))


def _backing_off(state: ControllerState, now: datetime, what: str) -> str | None:
    if state.retry_at is None or now >= state.retry_at:
        return None
    return (
        f"alert: {what}, but failover attempt {state.failed_attempts} failed; "
        f"next attempt at {state.retry_at.isoformat()}"
    )


def decide(snapshot: Snapshot, state: ControllerState, policy: Policy, now: datetime) -> Decision:
    primary, standby = state.primary, state.standby
    if state.failover_in_progress is not None:
        target = state.failover_in_progress
        if state.paused:  # paused means no automatic action at all, a resumed run included
            return Decision(
                Outcome.PAUSED,
                Action.ALERT,
                f"no action: the failover to {target} is unfinished, but automation is "
                "paused (`mxctl resume` lets it finish)",
                state,
            )
        waiting = _backing_off(state, now, f"the failover to {target} is unfinished")
        if waiting is not None:
            return Decision(Outcome.BACKING_OFF, Action.ALERT, waiting, state)
        return Decision(
            Outcome.RESUME_FAILOVER,
            Action.FAILOVER,
            f"resuming the unfinished failover to {target}: its steps are journaled as started",
            state,
            promote=target,
        )
    counts = _count_failures(snapshot, state, policy)
    new_state = replace(state, failed_cycles=counts)
    if state.blocked_until is not None and now >= state.blocked_until:
        new_state = replace(new_state, blocked_until=None)

    def decision(outcome: Outcome, action: Action, reason: str) -> Decision:
        return Decision(outcome, action, reason, new_state)

    votes = host_votes(snapshot, primary, policy.observers, primary=True)
    if votes.voting < votes.floor:
        return decision(
            Outcome.NO_QUORUM,
            Action.ALERT,
            f"no action: only {votes.voting} of {policy.observers} observers see primary "
            f"{primary} ({', '.join(votes.abstained)} abstain; {votes.floor} needed)",
        )
    p_failed, s_failed = counts[primary], counts[standby]
    p_votes = list(votes.failed)
    if p_failed == 0:
        # The primary serves: a streak of failed failover attempts is over.
        new_state = replace(new_state, failed_attempts=0, retry_at=None)
        if p_votes:
            return decision(
                Outcome.PRIMARY_UNREACHABLE,
                Action.NONE,
                f"no action: primary {primary} failed only for {', '.join(p_votes)} "
                f"({votes.describe()}, {votes.needed} needed): unreachable, not dead",
            )
        if s_failed and standby in state.fenced:
            return decision(
                Outcome.HEALTHY,
                Action.NONE,
                f"no action: primary {primary} healthy; standby {standby} is fenced "
                "(it serves no clients until a switchback)",
            )
        if s_failed:
            return decision(
                Outcome.STANDBY_DEAD,
                Action.ALERT,
                f"alert: standby {standby} failed for {s_failed} cycle(s); "
                f"primary {primary} healthy",
            )
        return decision(Outcome.HEALTHY, Action.NONE, f"no action: primary {primary} healthy")
    if p_failed < policy.failure_threshold:
        return decision(
            Outcome.PRIMARY_FAILING,
            Action.NONE,
            f"no action yet: primary {primary} failed for {p_failed} of "
            f"{policy.failure_threshold} cycles by {votes.describe()}",
        )
    dead = f"primary {primary} dead for {p_failed} cycles by {votes.describe()}"
    if s_failed:
        return decision(
            Outcome.BOTH_DEAD,
            Action.ALERT,
            f"no DNS change: {dead}, and standby {standby} is down too",
        )
    if state.paused:
        return decision(
            Outcome.PAUSED,
            Action.ALERT,
            f"no action: {dead}, but automation is paused (`mxctl resume` lets it fail over)",
        )
    window = next((w for w in state.maintenance if w.covers(primary, now)), None)
    if window is not None:
        return decision(
            Outcome.MAINTENANCE,
            Action.NONE,
            f"no action: {dead}, inside its maintenance window until {window.ends.isoformat()}",
        )
    if new_state.blocked_until is not None:
        return decision(
            Outcome.BLOCKED,
            Action.ALERT,
            f"no action: {dead}, but a recent failover is unacknowledged "
            f"(blocked until {new_state.blocked_until.isoformat()}; `mxctl ack` lifts it)",
        )
    lag = snapshot.replication_lag_s()
    if lag is not None and lag > policy.max_replication_lag_s:
        return decision(
            Outcome.STANDBY_LAGGING,
            Action.ALERT,
            f"no action: {dead}, but standby {standby} lags {lag:.0f} s > "
            f"{policy.max_replication_lag_s:.0f} s allowed "
            "(promote by hand with --allow-data-loss)",
        )
    waiting = _backing_off(new_state, now, dead)
    if waiting is not None:
        return decision(Outcome.BACKING_OFF, Action.ALERT, waiting)
    promoted = replace(
        new_state,
        failover_in_progress=standby,
        blocked_until=now + timedelta(seconds=policy.anti_flap_s),
    )
    return Decision(
        Outcome.PRIMARY_DEAD,
        Action.FAILOVER,
        f"promoting {standby}: {dead}",
        promoted,
        promote=standby,
    )


def failover_finished(state: ControllerState) -> ControllerState:
    """The state after a completed failover: roles swapped, the old primary fenced, the
    promoted host out of the fenced set (it serves now: it must never be fenced)."""
    if state.failover_in_progress is None:
        return state
    new_primary = state.failover_in_progress
    old_primary = state.primary if new_primary == state.standby else state.standby
    return replace(
        state,
        primary=new_primary,
        standby=old_primary,
        fenced=(state.fenced | {old_primary}) - {new_primary},
        failed_cycles={},
        failover_in_progress=None,
        failed_attempts=0,
        retry_at=None,
    )


def failover_failed(
    before: ControllerState,
    attempted: ControllerState,
    dns_moved: bool,
    policy: Policy,
    now: datetime,
) -> ControllerState:
    """The state after a failed attempt. DNS already moved: the failover stays in progress
    and is finished forward (DNS and the state must never disagree for long). DNS not
    moved: nothing is in progress, the anti-flap block is what it was. Either way the next
    attempt waits a capped, doubling delay."""
    attempts = attempted.failed_attempts + 1
    retry_at = now + timedelta(seconds=backoff_s(attempts, policy))
    if dns_moved:
        return replace(attempted, failed_attempts=attempts, retry_at=retry_at)
    return replace(
        attempted,
        failover_in_progress=None,
        blocked_until=before.blocked_until,
        failed_attempts=attempts,
        retry_at=retry_at,
    )
