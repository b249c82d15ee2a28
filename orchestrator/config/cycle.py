"""How long one controller cycle may take, and whether the config leaves room for it.

A cycle reads the world before it decides: the local probe round, the witnesses, the
standby's view, DNS and the hosts' fences, each bounded by the world reader's budget
(controller/world.py uses these figures, so the check and the reader cannot drift
apart). A cluster leader renews its lease when a cycle starts and again before it acts:
a read that outlasts the lease hands the leadership to another controller exactly when
a host has gone silent, which is when a failover is due.

Pure: numbers in, problems (field, text) out; tested from a table.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_GRACE_S = 1.0  # the witnesses' and standby's extra second once the budget is spent


def world_read_budget(probe_timeout: float) -> float:
    """What each of a cycle's reads may take: two probe steps and a little slack."""
    return max(2.0, 2 * probe_timeout + 0.5)


def worst_world_read(probe_timeout: float) -> float:
    """The longest a cycle waits for the world: the probe round gets the budget, the
    grace second and two probe timeouts more (its probes run several steps each)."""
    return world_read_budget(probe_timeout) + READ_GRACE_S + 2 * probe_timeout


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
    if t is None:
        return problems
    worst = worst_world_read(t)
    if ttl < worst + margin:
        need = worst + margin
        problems.append((
            "cluster.lease_ttl",
            f"{ttl} s is shorter than the longest cycle plus cluster.safety_margin "
            f"({worst:g} s + {margin:g} s = {need:g} s): with probes.timeout = {t:g} s a "
            "cycle may wait that long for the probes before the leader renews its lease; "
            f"raise cluster.lease_ttl to at least {_ceil(need)} or lower probes.timeout",
        ))  # fmt: skip
    return problems


def _ceil(seconds: float) -> int:
    whole = int(seconds)
    return whole if whole == seconds else whole + 1
