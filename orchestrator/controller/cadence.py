"""The loop's clock: cycles start at start + k x interval while they fit in it.

A cycle's slow reads (the standby's view, witnesses, fences, DNS) are due a little before
the next start, so deciding, journaling and the sentence fit in the same interval. A
cycle that runs past one or more starts (a silent host's probe timeout, a failover) is
followed at once by the next, which starts the grid anew; the metrics count the starts
it ran past. Pure.
"""

from __future__ import annotations

import math

from orchestrator.config.cycle import READS_SHARE


def reads_due(cycle_start: float, interval: float, now: float | None = None) -> float:
    """The monotonic time by which a cycle's reads must be in. A probe still unanswered
    then has failed, so the reads always get at least half their window from `now` (when
    they begin): a cycle whose own work before them was slow (an etcd check waiting out a
    lost quorum) overruns its slot rather than take the controller's slowness for the
    hosts' and vote them failed."""
    due = cycle_start + READS_SHARE * interval
    if now is None:
        return due
    return max(due, now + READS_SHARE * interval / 2)


def next_start(started: float, interval: float, now: float) -> tuple[float, int]:
    """The start that follows a cycle begun at `started`, and how many starts went by
    while it ran (0: it ended in time). In time: the next start on the grid. Overrun (a
    cycle that waited out a silent host's probe timeout, a failover): the next cycle
    begins at once and the grid goes on from there; waiting for the next slot would
    stretch each cycle of a silent host to two intervals, and detection with it."""
    k = max(1, math.ceil((now - started) / interval))
    if k == 1:
        return started + interval, 0
    return now, k - 1
