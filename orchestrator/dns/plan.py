"""Plans: what would change to point the MX (and client-facing names) at one mail host.

A plan is data: typed compare-and-swap changes in a fixed order, serialisable to JSON,
checked for safety before it is shown and again before it is applied. An unsafe plan
raises UnsafePlan listing every reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.provider import ApplyResult, DnsProvider
from orchestrator.dns.records import Change, RRset, address_type, in_zone, mx_rdata
from orchestrator.dns.wire import resolve_system
from orchestrator.errors import UnsafePlan

log = logging.getLogger(__name__)

# (name, type) -> the RRset a nameserver serves now
Reader = Callable[[str, str], RRset]


# A standby published as backup MX gets the primary's preference plus this: a remote MTA
# that finds the primary dead tries it in the same delivery attempt (RFC 5321 5.1).
BACKUP_PREFERENCE_STEP = 10


@dataclass(frozen=True)
class Plan:
    mx_host: str
    changes: tuple[Change, ...]
    unchanged: tuple[RRset, ...]
    backup_host: str | None = None  # the standby, listed as a lower-priority MX

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def desired(self) -> tuple[RRset, ...]:
        """Every owned RRset as it should be once the plan is applied."""
        merged = [c.desired for c in self.changes] + list(self.unchanged)
        return tuple(sorted(merged, key=lambda r: r.key))

    def describe(self) -> str:
        backup = f" (backup MX {self.backup_host})" if self.backup_host else ""
        lines = [f"plan: point mail at {self.mx_host}{backup}"]
        lines += [f"  {c.describe()}" for c in self.changes]
        lines += [f"  keep {r.describe()}" for r in self.unchanged]
        if self.empty:
            lines.append("  nothing to change")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "mx_host": self.mx_host,
            "backup_host": self.backup_host,
            "changes": [c.to_json() for c in self.changes],
            "unchanged": [r.to_json() for r in self.unchanged],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Plan:
        return cls(
            raw["mx_host"],
            tuple(Change.from_json(c) for c in raw["changes"]),
            tuple(RRset.from_json(r) for r in raw["unchanged"]),
            raw.get("backup_host"),
        )


def _mail_host(config: DnsConfig, name: str) -> tuple[str, tuple[str, ...]]:
    found = config.mail_host(name)
    if found is None:
        known = ", ".join(sorted(config.mail_hosts))
        raise UnsafePlan([f"{name} is not a configured mail host (dns.mail_hosts: {known})"])
    return found[0], tuple(found[1])


def desired_rrsets(config: DnsConfig, mx_host: str, backup: str | None = None) -> list[RRset]:
    """The owned RRsets as they must be when mail goes to `mx_host`, with `backup` (the
    healthy, unfenced standby) as a lower-priority MX; client names follow `mx_host` only."""
    host, addresses = _mail_host(config, mx_host)
    backup_host = _mail_host(config, backup)[0] if backup else None
    if backup_host == host:
        raise UnsafePlan([f"{backup} cannot back up itself: the backup MX must be the other host"])
    wanted = []
    for record in config.records:
        if record.rtype == "MX":
            rdatas: tuple[str, ...] = (mx_rdata(record.priority, host),)
            if backup_host:
                step = record.priority + BACKUP_PREFERENCE_STEP
                rdatas += (mx_rdata(step, backup_host),)
        else:
            rdatas = tuple(a for a in addresses if address_type(a) == record.rtype)
        wanted.append(RRset(record.name, record.rtype, record.ttl, rdatas))
    return wanted


def build_plan(
    config: DnsConfig,
    provider: DnsProvider,
    mx_host: str,
    resolve: Reader | None = None,
    backup: str | None = None,
) -> Plan:
    """Read every owned RRset and plan the changes; UnsafePlan if any is unsafe."""
    changes = []
    unchanged = []
    for want in desired_rrsets(config, mx_host, backup):
        current = provider.read(want.name, want.rtype)
        if current.serves_as(want):
            unchanged.append(current)
        else:
            changes.append(Change(current, want))
    plan = Plan(
        _host(config, mx_host),
        tuple(sorted(changes, key=apply_order)),
        tuple(sorted(unchanged, key=lambda r: r.key)),
        _host(config, backup) if backup else None,
    )
    check_plan(plan, config, _address_reader(config, provider, resolve))
    return plan


def apply_order(change: Change) -> tuple[bool, int, str, str]:
    """Address records before the MX that may need them; within each, creates first,
    deletes last."""
    return (change.key[1] == "MX", *change.sort_key())


def _host(config: DnsConfig, mx_host: str) -> str:
    found = config.mail_host(mx_host)
    return found[0] if found else mx_host


def check_plan(plan: Plan, config: DnsConfig, read: Reader) -> None:
    """Refuse a plan that empties an MX set, strays from the owned records, or points MX
    at a name without an address record."""
    problems = []
    desired = {r.key: r for r in plan.desired}
    for change in plan.changes:
        name, rtype = change.key
        if not config.owns(name, rtype):
            problems.append(f"{name} {rtype} is not an owned record (dns.records): not touching it")
        if rtype == "MX" and not change.desired.exists:
            problems.append(f"{name} MX would be left empty: mail for {name} would bounce")
    for rrset in plan.desired:
        if rrset.rtype != "MX":
            continue
        if not rrset.exists and all(c.key != rrset.key for c in plan.changes):
            problems.append(f"{rrset.name} MX is empty")
        for _, target in rrset.mx_targets():
            planned = [desired.get((target, t)) for t in ("A", "AAAA")]
            if any(p is not None and p.exists for p in planned):
                continue
            if not any(read(target, t).exists for t in ("A", "AAAA")):
                problems.append(
                    f"{rrset.name} MX would point at {target}, which has no A or AAAA record: "
                    "create the address record first"
                )
    if problems:
        raise UnsafePlan(problems)


def _address_reader(config: DnsConfig, provider: DnsProvider, resolve: Reader | None) -> Reader:
    def read(name: str, rtype: str) -> RRset:
        if any(in_zone(name, z) for z in config.zones):
            return provider.read(name, rtype)
        return (resolve or resolve_system)(name, rtype)

    return read


def apply_plan(
    plan: Plan,
    config: DnsConfig,
    provider: DnsProvider,
    deadline: float | None = None,
    resolve: Reader | None = None,
) -> list[ApplyResult]:
    """Check the plan again, then compare-and-swap the changes in order and wait for them.

    Address records come before the MX that needs them (creates, then updates, deletes
    last). A provider with batch writes swaps each zone's RRsets in one atomic step. A
    stale expectation stops the plan with StaleExpectation, having changed only what came
    before it (with batch writes: nothing in that zone).
    """
    check_plan(plan, config, _address_reader(config, provider, resolve))
    ordered = sorted(plan.changes, key=apply_order)
    results = provider.apply_changes(ordered, deadline)
    for result in results:
        log.info("%s: %s", result.outcome.value, result.change.describe())
    for change in ordered:
        provider.wait_applied(change, deadline)
    return results
