"""Whether a planned move (an operator's intent) should run now, wait, or be dropped.

Pure, tested from a table. An intent is checked against the controller's *current* state
(not the config) when it is requested and again when it is due: an automatic failover
may have made it pointless ("switchover to mx2" when mx2 already is the primary) or
unsafe (a switchover onto a fenced host). An invalid intent is dropped with its reason,
never left pending, so no intent can stop the loop; one that is not carried out within
`maintenance.intent_expiry` of its time expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from orchestrator.controller.model import ControllerState


class IntentVerdict(Enum):
    RUN = "run"
    WAIT = "wait"
    DROP = "drop"


@dataclass(frozen=True)
class Intent:
    kind: str  # switchover | switchback
    to: str  # fqdn of the host that must become the primary
    at: datetime  # not before
    expires: datetime  # dropped when still pending at this time
    allow_data_loss: bool = False
    started: bool = False  # a run of it is journaled (a crash interrupted it): resume it


def intent_problem(kind: str, to: str, state: ControllerState) -> str | None:
    """Why a planned move cannot apply to the pair as it is now (None: it can)."""
    if to not in (state.primary, state.standby):
        return f"{to} is not in the pair ({state.primary}, {state.standby})"
    if state.failover_in_progress is not None:
        return None  # judged again once the failover has finished
    if kind == "switchover":
        if to == state.primary:
            return f"{to} is already the primary (an automatic failover moved mail there)"
        if to in state.fenced:
            return f"{to} is fenced: bring it back with `mxctl switchback`, not a switchover"
    elif kind == "switchback":
        if to == state.primary and to not in state.fenced and state.standby not in state.fenced:
            return f"{to} is already the primary and nothing is fenced: nothing to switch back"
    else:
        return f"unknown kind of planned move {kind!r}"
    return None


def judge(
    intent: Intent, state: ControllerState, now: datetime, target_failing: bool
) -> tuple[IntentVerdict, str]:
    """RUN, WAIT or DROP this intent in this cycle, with the reason."""
    what = f"{intent.kind} to {intent.to}"
    if intent.started:
        if intent.to not in (state.primary, state.standby):
            return IntentVerdict.DROP, f"{what}: {intent.to} is no longer in the pair"
        if state.failover_in_progress is not None:
            return IntentVerdict.WAIT, f"{what}: waiting for the failover in progress"
        return IntentVerdict.RUN, f"{what}: resuming the interrupted run"
    if now >= intent.expires:
        return (
            IntentVerdict.DROP,
            f"{what} expired at {intent.expires.isoformat()}: not carried out in time",
        )
    problem = intent_problem(intent.kind, intent.to, state)
    if problem is not None:
        return IntentVerdict.DROP, f"{what} is no longer valid: {problem}"
    if state.failover_in_progress is not None:
        return IntentVerdict.WAIT, f"{what}: waiting for the failover in progress"
    if now < intent.at:
        return IntentVerdict.WAIT, f"{what}: due at {intent.at.isoformat()}"
    # A fenced target fails its probes by design: the move (a switchback) unfences it
    # and checks it before anything else moves.
    if target_failing and intent.to not in state.fenced:
        return IntentVerdict.DROP, f"{what} dropped: {intent.to} fails its probes"
    return IntentVerdict.RUN, f"{what}: due"
