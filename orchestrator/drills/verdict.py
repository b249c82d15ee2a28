"""Pure: a failover drill's figures and verdict from what was measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from orchestrator.drills.mailflow import Attempt


@dataclass(frozen=True)
class DrillResult:
    at: str
    result: str  # passed | failed
    why: str
    switchover_s: float | None
    switchback_s: float | None
    convergence_s: float  # the `converge` steps of both moves
    not_accepted_s: float  # seconds the host the MX named did not accept mail
    messages_sent: int
    messages_accepted: int
    messages_lost: int  # accepted, never delivered
    lost: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_accepted_seconds(attempts: Sequence[Attempt]) -> float:
    """Seconds without acceptance, from the timestamps: each run of failed attempts counts
    from the end of the accepted one before it (or its own start) to the start of the
    accepted one after it (or the last attempt's end). A failed attempt takes as long as
    it takes (a silent host: a whole timeout), so counting attempts undercounts."""
    total, since, last_ok = 0.0, None, None
    ordered = sorted(attempts, key=lambda a: a.started)
    for a in ordered:
        if a.accepted:
            if since is not None:
                total += a.started - since
                since = None
            last_ok = a.ended
        elif since is None:
            since = last_ok if last_ok is not None else a.started
    if since is not None:
        total += ordered[-1].ended - since
    return round(total, 2)


def phase_seconds(events: Sequence[Any], run_id: str, step: str) -> float:
    """Duration of `step` in run `run_id` from the journal's started/done events."""
    started = None
    for e in events:
        if e.run_id != run_id or e.kind != "step" or e.subject != step:
            continue
        at = datetime.fromisoformat(e.at)
        if e.status == "started":
            started = at
        elif e.status == "done" and started is not None:
            return (at - started).total_seconds()
    return 0.0


def verdict(
    at: str,
    moves: dict[str, tuple[bool, float | None]],  # kind -> (done, seconds)
    convergence_s: float,
    attempts: Sequence[Attempt],
    delivered: set[str],
    max_not_accepted_s: float,
) -> DrillResult:
    accepted = [a.token for a in attempts if a.accepted]
    lost = tuple(sorted(set(accepted) - delivered))
    gap = not_accepted_seconds(attempts)
    problems = [f"{kind} did not complete" for kind, (done, _) in moves.items() if not done]
    if lost:
        problems.append(f"{len(lost)} accepted messages lost")
    if gap > max_not_accepted_s:
        problems.append(f"mail not accepted for {gap} s (> {max_not_accepted_s} s)")
    if not accepted:
        problems.append("no message was accepted at all")
    why = "; ".join(problems) or (
        f"switchover and switchback done, {len(accepted)} messages accepted and delivered, "
        f"mail not accepted for {gap} s"
    )
    return DrillResult(
        at=at,
        result="failed" if problems else "passed",
        why=why,
        switchover_s=moves.get("switchover", (False, None))[1],
        switchback_s=moves.get("switchback", (False, None))[1],
        convergence_s=round(convergence_s, 2),
        not_accepted_s=gap,
        messages_sent=len(attempts),
        messages_accepted=len(accepted),
        messages_lost=len(lost),
        lost=lost,
    )
