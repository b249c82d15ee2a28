"""How long one controller cycle may take, and whether the config leaves room for it.

A cycle reads the world before it decides: the local probe round, the witnesses, the
standby's view, DNS and the hosts' fences, each bounded by the world reader's budget
(controller/world.py uses these figures). A probe timeout longer than the interval makes
every cycle of a silent host longer than the interval, so failures are counted per probe
timeout rather than per interval: refused. A cluster leader renews its lease when a cycle
starts; the lease must outlast two intervals plus the safety margin.

Pure: numbers in, problems (field, text) out; tested from a table.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_GRACE_S = 1.0  # the witnesses' and standby's extra second once the budget is spent


def world_read_budget(probe_timeout: float) -> float:
    """What each of a cycle's reads may take: two probe steps and a little slack."""
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
