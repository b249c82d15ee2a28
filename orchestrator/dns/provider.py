"""The provider protocol and the base every provider builds on.

The base owns the behaviour that must be the same everywhere: zone lookup, retries,
compare-and-swap semantics ("already desired" is success, a stale expectation changes
nothing and reports what is there), and waiting until the provider says a change is
applied. A provider fills in four small hooks: `_read`, `_write`, `_nameservers` and,
when its writes are not visible at once, `_is_applied`; and it parses its own
`[dns.<kind>]` settings (`parse_settings`), found through `orchestrator.dns.registry`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.dns import wire
from orchestrator.dns.records import Change, RRset, in_zone, normalise_name
from orchestrator.dns.registry import ProviderSettings
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import DnsError, DnsUnavailable, StaleExpectation

if TYPE_CHECKING:
    from orchestrator.config.fields import Reader, Table


class Outcome(StrEnum):
    APPLIED = "applied"  # this call changed the RRset
    ALREADY = "already"  # it was already the desired RRset: nothing written


@dataclass(frozen=True)
class ApplyResult:
    change: Change
    outcome: Outcome

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change.to_json(), "outcome": self.outcome.value}


@dataclass(frozen=True)
class Nameserver:
    """An authoritative server of a zone: its name and the addresses to query it at."""

    name: str
    addresses: tuple[str, ...]


class DnsProvider(Protocol):
    kind: ClassVar[str]

    @property
    def requests(self) -> int:
        """API requests (or DNS messages) sent so far, retries included."""

    def read(self, name: str, rtype: str) -> RRset: ...

    def apply_change(self, change: Change, deadline: float | None = None) -> ApplyResult: ...

    def apply_changes(
        self, changes: Sequence[Change], deadline: float | None = None
    ) -> list[ApplyResult]: ...

    def wait_applied(self, change: Change, deadline: float | None = None) -> None: ...

    def authoritative_servers(self, zone: str) -> list[Nameserver]: ...

    def close(self) -> None: ...


class BaseProvider:
    kind: ClassVar[str] = "base"
    # True when the write itself checks the expectation on the server (RFC 2136
    # prerequisites); False when the provider reads, compares, then writes.
    SERVER_SIDE_CAS: ClassVar[bool] = False
    # True when one write can swap several RRsets of a zone atomically (`_write_batch`).
    BATCH_WRITES: ClassVar[bool] = False
    # True when a successful write already proves the provider serves the result, so
    # waiting needs no request (RFC 2136 NOERROR; PowerDNS after its re-read).
    APPLIED_ON_WRITE: ClassVar[bool] = False

    def __init__(
        self,
        settings: ProviderSettings,
        zones: tuple[str, ...],
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Subclasses narrow `settings` to their own dataclass (the registry parsed it
        # with their `parse_settings`, so the type always matches).
        self.zones = zones
        self.clock = clock or (policy.clock if policy else SYSTEM_CLOCK)
        self.policy = policy or RetryPolicy(clock=self.clock)
        self._requests = 0

    @property
    def requests(self) -> int:
        return self._requests

    def count_request(self, n: int = 1) -> None:
        self._requests += n

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> ProviderSettings:
        """This provider's `[dns.<kind>]` table; every problem goes to `reader`."""
        raise NotImplementedError

    # -- hooks ------------------------------------------------------------------------
    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        raise NotImplementedError

    def _write(self, zone: str, change: Change) -> Outcome:
        """Make `change.desired` current if `change.expected` is; else StaleExpectation."""
        raise NotImplementedError

    def _nameservers(self, zone: str) -> list[Nameserver]:
        raise NotImplementedError

    def _write_batch(self, zone: str, changes: Sequence[Change]) -> list[Outcome]:
        """All of `changes` (one zone) at once if every expectation holds; else none."""
        raise NotImplementedError

    def _is_applied(self, zone: str, change: Change) -> bool:
        return self._read(zone, *change.key).serves_as(change.desired)

    def close(self) -> None:
        """Release connections; the provider is not used afterwards."""

    def _servers_at(self, names: Iterable[str]) -> list[Nameserver]:
        """Nameservers with their addresses: names inside our zones are read from the
        provider itself (in-zone glue), others from the system resolver."""
        servers = []
        for target in names:
            home = next((z for z in self.zones if in_zone(target, z)), None)
            addresses: list[str] = []
            for rtype in ("A", "AAAA"):
                found = (
                    self._read(home, target, rtype) if home else wire.resolve_system(target, rtype)
                )
                addresses.extend(found.rdatas)
            servers.append(Nameserver(target, tuple(addresses)))
        return servers

    # -- the protocol -----------------------------------------------------------------
    def zone_of(self, name: str) -> str:
        name = normalise_name(name)
        matches = [z for z in self.zones if in_zone(name, z)]
        if not matches:
            raise DnsError(f"{name} is in none of the configured zones ({', '.join(self.zones)})")
        return max(matches, key=len)

    def read(self, name: str, rtype: str, deadline: float | None = None) -> RRset:
        name, rtype = normalise_name(name), rtype.upper()
        zone = self.zone_of(name)
        return self.policy.run(lambda: self._read(zone, name, rtype), deadline)

    def apply_change(self, change: Change, deadline: float | None = None) -> ApplyResult:
        """Compare-and-swap one RRset; retried as a whole so a lost reply is not re-applied."""
        zone = self.zone_of(change.desired.name)

        def attempt() -> ApplyResult:
            try:
                return ApplyResult(change, self._write(zone, change))
            except StaleExpectation:
                current = self._read(zone, *change.key)
                if current.serves_as(change.desired):
                    return ApplyResult(change, Outcome.ALREADY)
                raise StaleExpectation(
                    f"{change.desired.name} {change.desired.rtype} is not what the plan "
                    f"expected; nothing was changed. Expected {change.expected.describe()}, "
                    f"found {current.describe()}: make a new plan",
                    current,
                ) from None

        return self.policy.run(attempt, deadline)

    def apply_changes(
        self, changes: Sequence[Change], deadline: float | None = None
    ) -> list[ApplyResult]:
        """Apply in order; with BATCH_WRITES, each zone's changes as one atomic swap."""
        if not self.BATCH_WRITES:
            return [self.apply_change(c, deadline) for c in changes]
        by_zone: dict[str, list[Change]] = {}
        for change in changes:
            by_zone.setdefault(self.zone_of(change.desired.name), []).append(change)
        results: list[ApplyResult] = []
        for zone, group in by_zone.items():
            attempt = functools.partial(self._attempt_batch, zone, group)
            results += self.policy.run(attempt, deadline)
        return results

    def _attempt_batch(self, zone: str, changes: list[Change]) -> list[ApplyResult]:
        try:
            return [
                ApplyResult(c, o)
                for c, o in zip(changes, self._write_batch(zone, changes), strict=True)
            ]
        except StaleExpectation:
            pass
        # Nothing was applied. Sort out what is there now: already desired (an earlier
        # attempt whose reply was lost, or another writer), still as expected, or neither.
        current = {c.key: self._read(zone, *c.key) for c in changes}
        pending = [c for c in changes if not current[c.key].serves_as(c.desired)]
        stale = [c for c in pending if not current[c.key].same_data(c.expected)]
        if stale:
            found = "; ".join(
                f"expected {c.expected.describe()}, found {current[c.key].describe()}"
                for c in stale
            )
            raise StaleExpectation(
                f"{zone}: records are not what the plan expected; nothing was changed in "
                f"this zone ({found}): make a new plan",
                current[stale[0].key],
            )
        outcomes: dict[tuple[str, str], Outcome] = {}
        if pending:
            try:
                written = self._write_batch(zone, pending)
            except StaleExpectation:
                # Changed again between our read and write: start the attempt over.
                raise DnsUnavailable(f"{zone}: records changed while applying") from None
            outcomes = dict(zip([c.key for c in pending], written, strict=True))
        return [ApplyResult(c, outcomes.get(c.key, Outcome.ALREADY)) for c in changes]

    def wait_applied(
        self, change: Change, deadline: float | None = None, interval: float = 0.5
    ) -> None:
        """Poll the provider until it serves `change.desired`, or DnsUnavailable at deadline."""
        if self.APPLIED_ON_WRITE:
            return
        zone = self.zone_of(change.desired.name)
        end = self.policy.deadline_in() if deadline is None else deadline
        while True:
            if self.policy.run(lambda: self._is_applied(zone, change), end):
                return
            if self.clock.monotonic() + interval > end:
                raise DnsUnavailable(
                    f"{self.kind}: {change.desired.describe()} not reported applied before the "
                    "deadline"
                )
            self.clock.sleep(interval)

    def authoritative_servers(self, zone: str) -> list[Nameserver]:
        zone = normalise_name(zone)
        return self.policy.run(lambda: self._nameservers(zone))
