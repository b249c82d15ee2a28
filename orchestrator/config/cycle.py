"""How long one controller cycle may take, and whether the config leaves room for it.

A cycle reads the world before it decides: the local probe round, the witnesses, the
standby's view, DNS and the hosts' fences. The loop runs on a fixed clock: every read ends
at the cycle's deadline, a share of the interval (`READS_SHARE`; controller/cadence.py
reads it here), and a probe unanswered by then has failed. So a cycle's reads never
outlast its interval, and a cluster leader, which renews its lease when a cycle starts,
fits in a lease of two intervals plus the safety margin. What the config must still
refuse is a probe timeout longer than the interval: every slow probe would then be cut
at the deadline, failed for a reason of the config's making.

Pure: numbers in, problems (field, text) out; tested from a table.
"""

from __future__ import annotations

from dataclasses import dataclass

# Share of the interval a cycle's reads may take; the rest is for deciding and acting.
READS_SHARE = 0.9


def world_read_budget(probe_timeout: float) -> float:
    """What each read may take when its caller gives no deadline (a one-off read)."""
    return max(2.0, 2 * probe_timeout + 0.5)


@dataclass(frozen=True)
class CycleLimits:
    probe_timeout: float | None  # [probes] timeout; None: not read by this command
    interval: float  # [policy] interval
    lease_ttl: int | None = None  # [cluster] lease_ttl; None: no cluster
    safety_margin: float = 0.0  # [cluster] safety_margin


def cycle_problems(limits: CycleLimits) -> list[tuple[str, str]]:
    """(field, problem) for each setting that lets a cycle outlast what it must fit in."""
    problems: list[tuple[str, str]] = []
    t, interval = limits.probe_timeout, limits.interval
    if t is not None and t > interval:
        problems.append((
            "probes.timeout",
            f"{t:g} s is longer than policy.interval = {interval:g} s: a probe could not "
            "finish within one cycle, so failures would be counted every probe timeout "
            "rather than every interval; lower probes.timeout or raise policy.interval",
        ))  # fmt: skip
    if limits.lease_ttl is None:
        return problems
    ttl, margin = limits.lease_ttl, limits.safety_margin
    least = 2 * interval + margin
    if ttl < least:
        problems.append((
            "cluster.lease_ttl",
            f"{ttl} s is too short for policy.interval = {interval:g} s: "
            f"at least 2 x interval + safety_margin ({least:g} s)",
        ))  # fmt: skip
    return problems
