"""The loop's fixed clock: cycles start at start + k x interval, whatever a cycle costs.

A cycle's reads are due a little before the next start, so deciding, journaling and the
sentence fit in the same interval. A cycle that runs past one or more starts (a failover,
a slow journal) skips them rather than queueing them: the next cycle starts at the next
start still ahead, and the metrics count the overrun. Pure.
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
    """The start that follows a cycle begun at `started` (on the grid, not before `now`),
    and how many starts went by while it ran (0: it ended in time)."""
    k = max(1, math.ceil((now - started) / interval))
    return started + k * interval, k - 1
