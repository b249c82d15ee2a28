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

from orchestrator.controller.model import ControllerState, Health, Policy, Snapshot


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
        failed = len(snapshot.votes(host, Health.FAILED)) >= policy.quorum
        counts[host] = state.failures(host) + 1 if failed else 0
    return counts


def decide(snapshot: Snapshot, state: ControllerState, policy: Policy, now: datetime) -> Decision:
    primary, standby = state.primary, state.standby
    if state.failover_in_progress is not None:
        target = state.failover_in_progress
        return Decision(
            Outcome.RESUME_FAILOVER,
            Action.FAILOVER,
            f"resuming the interrupted failover to {target}: its steps are journaled as started",
            state,
            promote=target,
        )
    counts = _count_failures(snapshot, state, policy)
    new_state = replace(state, failed_cycles=counts)
    if state.blocked_until is not None and now >= state.blocked_until:
        new_state = replace(new_state, blocked_until=None)

    def decision(outcome: Outcome, action: Action, reason: str) -> Decision:
        return Decision(outcome, action, reason, new_state)

    reporting = [
        r for r in snapshot.reports if any(h is not Health.UNKNOWN for h in r.hosts.values())
    ]
    if len(reporting) < policy.quorum:
        return decision(
            Outcome.NO_QUORUM,
            Action.ALERT,
            f"no action: only {len(reporting)} of {policy.observers} observers reported "
            f"(quorum {policy.quorum})",
        )
    p_failed, s_failed = counts[primary], counts[standby]
    p_votes = snapshot.votes(primary, Health.FAILED)
    if p_failed == 0:
        if p_votes:
            return decision(
                Outcome.PRIMARY_UNREACHABLE,
                Action.NONE,
                f"no action: primary {primary} failed only for {', '.join(p_votes)} "
                f"({len(p_votes)} of {policy.observers}, quorum {policy.quorum}): "
                "unreachable, not dead",
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
            f"{policy.failure_threshold} cycles by {len(p_votes)} of {policy.observers} observers",
        )
    dead = (
        f"primary {primary} dead for {p_failed} cycles "
        f"by {len(p_votes)} of {policy.observers} observers"
    )
    if s_failed:
        return decision(
            Outcome.BOTH_DEAD,
            Action.ALERT,
            f"no DNS change: {dead}, and standby {standby} is down too",
        )
    if state.paused:
        return decision(
            Outcome.PAUSED, Action.ALERT, f"no action: {dead}, but automation is paused"
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
    """The state after a completed failover: roles swapped, the old primary fenced."""
    if state.failover_in_progress is None:
        return state
    new_primary = state.failover_in_progress
    old_primary = state.primary if new_primary == state.standby else state.standby
    return replace(
        state,
        primary=new_primary,
        standby=old_primary,
        fenced=state.fenced | {old_primary},
        failed_cycles={},
        failover_in_progress=None,
    )
