"""Is the controller alive and doing its job? Pure: what `/health` answers.

A controller whose cycles all raise, or that has not finished a cycle for three
intervals, is not watching the pair: `/health` must say so (503) so that a supervisor or
an operator notices, rather than answering ok while automatic failover is silently off.
A cycle busy carrying out a failover or a planned move is alive while its run is within
the time that run may take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Busy:
    what: str  # e.g. "failover to mx2 (run failover-...)"
    since: float  # monotonic
    budget_s: float  # how long that run may take


def liveness(
    now: float,
    started: float,
    last_completed: float | None,
    interval: float,
    recent_errors: Sequence[str | None],
    max_errors: int,
    busy: Busy | None,
) -> tuple[bool, str]:
    """(healthy, why). `recent_errors`: the last cycles' errors, newest last (None: ok)."""
    tail = list(recent_errors)[-max_errors:]
    if len(tail) >= max_errors and all(e is not None for e in tail):
        return False, f"the last {max_errors} cycles raised; last: {tail[-1]}"
    since = now - (last_completed if last_completed is not None else started)
    if since <= 3 * interval:
        return True, "cycles complete"
    if busy is not None and now - busy.since <= busy.budget_s:
        return True, f"carrying out {busy.what} for {now - busy.since:.0f} s"
    if last_completed is None:
        return False, f"no cycle completed in the {since:.0f} s since start"
    return False, f"no cycle completed for {since:.0f} s (interval {interval:g} s)"
