"""Proof at every authoritative nameserver: each one serves the desired RRsets, same serial.

Each server is queried directly (recursion not desired) and must answer with the AA flag;
an answer from a cache proves nothing. Serials are compared with RFC 1982 arithmetic so a
lagging secondary is reported as behind, not just "different".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.dns_section import NameserverAddress, VerifySettings
from orchestrator.dns import wire
from orchestrator.dns.provider import Nameserver
from orchestrator.dns.records import RRset, extra_records, in_zone
from orchestrator.errors import DnsError, DnsUnavailable


def serial_lt(a: int, b: int) -> bool:
    """RFC 1982: is serial a older than serial b?"""
    return a != b and ((a < b and b - a < 2**31) or (a > b and a - b > 2**31))


@dataclass(frozen=True)
class Target:
    name: str  # the NS name, or the address when configured explicitly
    address: str
    port: int

    def __str__(self) -> str:
        where = f"{self.address}:{self.port}"
        return where if self.name == self.address else f"{self.name} ({where})"


@dataclass(frozen=True)
class ServerAnswer:
    zone: str
    target: Target
    serial: int | None
    answers: tuple[RRset, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "server": self.target.name,
            "address": self.target.address,
            "port": self.target.port,
            "serial": self.serial,
            "answers": [a.to_json() for a in self.answers],
            "ok": self.ok,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class VerifyReport:
    desired: tuple[RRset, ...]
    servers: tuple[ServerAnswer, ...]
    problems: tuple[str, ...]
    elapsed: float
    rounds: int

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.servers)

    def summary(self, most: int = 3) -> str:
        """The first distinct problems, each with the first server that has it."""
        seen: dict[str, str] = {}
        for server in self.servers:
            for problem in server.problems:
                seen.setdefault(problem, f"{server.target}: {problem}")
        found = [*self.problems, *seen.values()]
        more = f" (and {len(found) - most} more)" if len(found) > most else ""
        return "; ".join(found[:most]) + more

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "elapsed_seconds": round(self.elapsed, 3),
            "rounds": self.rounds,
            "desired": [d.to_json() for d in self.desired],
            "servers": [s.to_json() for s in self.servers],
            "problems": list(self.problems),
        }


ServerLookup = Callable[[str], list[Nameserver]]


@dataclass
class Verifier:
    settings: VerifySettings
    zones: tuple[str, ...]
    lookup: ServerLookup  # zone -> its authoritative servers (a provider's NS set)
    clock: Clock = field(default=SYSTEM_CLOCK)

    def targets(self, zone: str) -> list[Target]:
        if self.settings.nameservers:
            return [_explicit(ns) for ns in self.settings.nameservers]
        targets: list[Target] = []
        for server in self.lookup(zone):
            if not server.addresses:
                raise DnsError(
                    f"nameserver {server.name} of {zone} has no address: set "
                    "dns.verify.nameservers to query the servers by address"
                )
            port = self.settings.port
            targets.extend(Target(server.name, a, port) for a in server.addresses)
        if not targets:
            raise DnsError(f"{zone} has no NS records: cannot verify")
        return targets

    def check(self, desired: Iterable[RRset]) -> VerifyReport:
        return self._round(tuple(desired), self._targets_by_zone(desired), 0.0, 1)

    def wait(self, desired: Iterable[RRset], deadline: float | None = None) -> VerifyReport:
        """Query every server until all serve `desired` with one serial, or the deadline."""
        wanted = tuple(desired)
        start = self.clock.monotonic()
        end = start + self.settings.deadline if deadline is None else deadline
        targets = self._targets_by_zone(wanted)
        rounds = 0
        while True:
            rounds += 1
            report = self._round(wanted, targets, self.clock.monotonic() - start, rounds)
            if report.ok or self.clock.monotonic() + self.settings.interval > end:
                return report
            self.clock.sleep(self.settings.interval)

    def _targets_by_zone(self, desired: Iterable[RRset]) -> dict[str, list[Target]]:
        zones = sorted({self._zone_of(r.name) for r in desired})
        return {zone: self.targets(zone) for zone in zones}

    def _zone_of(self, name: str) -> str:
        matches = [z for z in self.zones if in_zone(name, z)]
        if not matches:
            raise DnsError(f"{name} is in none of the configured zones")
        return max(matches, key=len)

    def _round(
        self,
        desired: tuple[RRset, ...],
        targets: dict[str, list[Target]],
        elapsed: float,
        rounds: int,
    ) -> VerifyReport:
        answers: list[ServerAnswer] = []
        problems: list[str] = []
        for zone, zone_targets in targets.items():
            wanted = [r for r in desired if self._zone_of(r.name) == zone]
            zone_answers = [self._ask(zone, t, wanted) for t in zone_targets]
            answers.extend(zone_answers)
            problems.extend(self._serial_problems(zone, zone_answers))
        return VerifyReport(desired, tuple(answers), tuple(problems), elapsed, rounds)

    def _ask(self, zone: str, target: Target, wanted: list[RRset]) -> ServerAnswer:
        timeout = self.settings.query_timeout
        problems: list[str] = []
        served: list[RRset] = []
        serial = None
        try:
            soa = wire.query(target.address, target.port, zone, "SOA", timeout)
            if not wire.is_authoritative(soa):
                problems.append(f"not authoritative for {zone} (no AA flag)")
            serial = wire.soa_serial(soa)
            for rrset in wanted:
                response = wire.query(target.address, target.port, rrset.name, rrset.rtype, timeout)
                got = wire.answer_rrset(response, rrset.name, rrset.rtype)
                served.append(got)
                if not wire.is_authoritative(response):
                    problems.append(f"{rrset.name} {rrset.rtype}: answer without AA flag")
                elif extra := extra_records(got, rrset):
                    problems.append(
                        f"{rrset.name} {rrset.rtype}: extra record {', '.join(extra)} served "
                        f"beside the wanted {', '.join(rrset.rdatas)}: not in the plan, so "
                        "another writer added it (a provider without compare-and-swap cannot "
                        "refuse that) or it is still being removed; remove it or own it"
                    )
                elif not got.serves_as(rrset):
                    problems.append(f"serves {got.describe()}, want {rrset.describe()}")
        except DnsUnavailable as exc:
            problems.append(str(exc))
        return ServerAnswer(zone, target, serial, tuple(served), tuple(problems))

    def _serial_problems(self, zone: str, answers: list[ServerAnswer]) -> list[str]:
        if not self.settings.require_same_serial:
            return []
        serials = {a.serial for a in answers if a.serial is not None}
        if len(serials) <= 1:
            return []
        newest = max(serials, key=lambda s: sum(serial_lt(o, s) for o in serials))
        behind = [f"{a.target} at {a.serial}" for a in answers if a.serial != newest]
        return [f"{zone}: serial {newest} not yet at {', '.join(behind)}"]


def _explicit(ns: NameserverAddress) -> Target:
    return Target(ns.address, ns.address, ns.port)
