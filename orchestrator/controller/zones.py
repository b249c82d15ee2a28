"""A DNS change that spans zones lands in all of them, or is swapped back in all of them.

A provider can swap one zone's RRsets atomically (an RFC 2136 UPDATE, a Cloudflare batch)
but nothing makes two zones change together: the MX of example.test may move while the
write to example.org fails. So the zones are written one after the other, and when one
fails, every zone already changed is compare-and-swapped back (desired -> expected) before
the step reports its failure: no half-applied move is left for the next cycle to guess at.
When even the swap back fails, the step says which zones are left changed; the loop's
reconciliation repairs them from what DNS serves at its next cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.config.dns_section import DnsConfig
from orchestrator.controller.runner import Evidence, StepFailed
from orchestrator.dns.plan import Plan, apply_order, apply_plan
from orchestrator.dns.provider import ApplyResult, BaseProvider, Outcome
from orchestrator.dns.records import Change
from orchestrator.errors import MxctlError


@dataclass
class ZoneWrites:
    """What the cross-zone apply did, zone by zone (journaled as the step's evidence)."""

    applied: list[tuple[str, list[ApplyResult]]] = field(default_factory=list)
    swapped_back: list[str] = field(default_factory=list)
    left_changed: dict[str, str] = field(default_factory=dict)  # zone -> why not swapped back

    def results(self) -> list[ApplyResult]:
        return [r for _, results in self.applied for r in results]

    def to_json(self) -> Evidence:
        return {
            "zones": [zone for zone, _ in self.applied],
            "results": [r.to_json() for r in self.results()],
            "swapped_back": self.swapped_back,
            "left_changed": self.left_changed,
        }


def by_zone(changes: Sequence[Change], provider: BaseProvider) -> list[tuple[str, list[Change]]]:
    """The changes grouped per zone, zones in the order their first change is applied."""
    groups: dict[str, list[Change]] = {}
    for change in sorted(changes, key=apply_order):
        groups.setdefault(provider.zone_of(change.desired.name), []).append(change)
    return list(groups.items())


def reverse(results: Sequence[ApplyResult]) -> list[Change]:
    """The swaps that undo what these writes changed (ALREADY: nothing was changed)."""
    undo = [Change(r.change.desired, r.change.expected) for r in results
            if r.outcome is Outcome.APPLIED]  # fmt: skip
    return sorted(undo, key=apply_order, reverse=True)


def apply_all_zones(
    plan: Plan,
    config: DnsConfig,
    provider: BaseProvider,
    deadline: float,
    undo_budget_s: float,
) -> ZoneWrites:
    """Write each zone in turn; on a failure swap the written ones back (within
    `undo_budget_s` from then: the failure may have used the whole deadline) and raise."""
    writes = ZoneWrites()
    groups = by_zone(plan.changes, provider)
    for zone, changes in groups:
        others = tuple(c.desired for z, cs in groups if z != zone for c in cs)
        sub = Plan(plan.mx_host, tuple(changes), plan.unchanged + others)
        try:
            writes.applied.append((zone, apply_plan(sub, config, provider, deadline)))
        except MxctlError as exc:
            _swap_back(writes, provider, provider.clock.monotonic() + undo_budget_s)
            undone = ", ".join(writes.swapped_back) or "none had changed"
            left = "; ".join(f"{z}: {why}" for z, why in writes.left_changed.items())
            message = f"{zone}: {exc}; zones swapped back: {undone}"
            if left:
                message += f"; LEFT CHANGED (repaired by the next cycles): {left}"
            raise StepFailed(message, {"failed_zone": zone, **writes.to_json()}) from None
    return writes


def _swap_back(writes: ZoneWrites, provider: BaseProvider, deadline: float) -> None:
    for zone, results in reversed(writes.applied):
        undo = reverse(results)
        if not undo:
            continue
        try:
            provider.apply_changes(undo, deadline)
            writes.swapped_back.append(zone)
        except MxctlError as exc:
            writes.left_changed[zone] = str(exc)
