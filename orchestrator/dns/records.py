"""Value objects for DNS data: names, RRsets and the compare-and-swap changes between them.

Names are absolute, lower-case and end with a dot. Rdatas are kept in canonical
presentation form (what dnspython prints), sorted, so two RRsets compare equal exactly when
a nameserver would serve the same set. MX rdatas keep their preference ("10 mx1.example.").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

MANAGED_TYPES = ("MX", "A", "AAAA")


def normalise_name(name: str) -> str:
    """`Mail.Example.test` -> `mail.example.test.`; ValueError when not a domain name."""
    text = name.strip()
    if not text or text == ".":
        raise ValueError(f"{name!r} is not a domain name")
    try:
        parsed = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise ValueError(f"{name!r} is not a domain name ({exc})") from None
    return parsed.to_text().lower()


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def canonical_rdata(rtype: str, text: str, origin: str | None = None) -> str:
    """Parse one rdata in presentation form and print it canonically (absolute names)."""
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
            text,
            origin=dns.name.from_text(origin) if origin else dns.name.root,
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValueError(f"{text!r} is not a valid {rtype} rdata ({exc})") from None
    return rdata.to_text().lower() if rtype in ("MX", "CNAME", "NS") else rdata.to_text()


def mx_rdata(preference: int, exchange: str) -> str:
    return f"{preference} {normalise_name(exchange)}"


def address_type(address: str) -> str:
    """A for IPv4, AAAA for IPv6; ValueError otherwise."""
    version = ipaddress.ip_address(address).version
    return "A" if version == 4 else "AAAA"


@dataclass(frozen=True)
class RRset:
    """One name+type at one TTL; an empty `rdatas` means the RRset does not exist.

    `proxied` is Cloudflare's: the edge answers with its own addresses instead of the
    rdatas, so a proxied RRset never serves as an unproxied one with the same data.
    """

    name: str
    rtype: str
    ttl: int = 0
    rdatas: tuple[str, ...] = field(default=())
    proxied: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_name(self.name))
        object.__setattr__(self, "rtype", self.rtype.upper())
        canon = sorted({canonical_rdata(self.rtype, r) for r in self.rdatas})
        object.__setattr__(self, "rdatas", tuple(canon))
        if not canon:
            object.__setattr__(self, "ttl", 0)
            object.__setattr__(self, "proxied", False)

    @property
    def exists(self) -> bool:
        return bool(self.rdatas)

    def same_data(self, other: RRset) -> bool:
        """Same rdata set (TTL ignored): what a CAS expectation compares."""
        return (
            self.key == other.key and self.rdatas == other.rdatas and self.proxied == other.proxied
        )

    def serves_as(self, other: RRset) -> bool:
        """Same rdata set and TTL: what a verifier and an idempotent retry compare."""
        return self.same_data(other) and self.ttl == other.ttl

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.rtype)

    def mx_targets(self) -> list[tuple[int, str]]:
        pairs = []
        for rdata in self.rdatas:
            preference, exchange = rdata.split()
            pairs.append((int(preference), exchange))
        return sorted(pairs)

    def describe(self) -> str:
        if not self.exists:
            return f"{self.name} {self.rtype} (absent)"
        proxied = " (proxied by Cloudflare)" if self.proxied else ""
        return f"{self.name} {self.ttl} {self.rtype} {', '.join(self.rdatas)}{proxied}"

    def to_json(self) -> dict[str, Any]:
        raw = {"name": self.name, "type": self.rtype, "ttl": self.ttl, "rdatas": list(self.rdatas)}
        return raw | {"proxied": True} if self.proxied else raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RRset:
        rdatas = tuple(raw["rdatas"])
        return cls(raw["name"], raw["type"], int(raw["ttl"]), rdatas, bool(raw.get("proxied")))


class ChangeKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


# Deletes last: a plan never removes data before its replacement exists.
KIND_ORDER = {ChangeKind.CREATE: 0, ChangeKind.UPDATE: 1, ChangeKind.DELETE: 2}


@dataclass(frozen=True)
class Change:
    """Compare-and-swap: if the RRset is `expected` now, make it `desired`."""

    expected: RRset
    desired: RRset

    def __post_init__(self) -> None:
        if self.expected.key != self.desired.key:
            raise ValueError(f"change mixes {self.expected.key} and {self.desired.key}")

    @property
    def key(self) -> tuple[str, str]:
        return self.desired.key

    @property
    def kind(self) -> ChangeKind:
        if not self.expected.exists:
            return ChangeKind.CREATE
        if not self.desired.exists:
            return ChangeKind.DELETE
        return ChangeKind.UPDATE

    def sort_key(self) -> tuple[int, str, str]:
        return (KIND_ORDER[self.kind], *self.key)

    def describe(self) -> str:
        return f"{self.kind.value} {self.expected.describe()} -> {self.desired.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.desired.name,
            "type": self.desired.rtype,
            "expected": self.expected.to_json(),
            "desired": self.desired.to_json(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Change:
        return cls(RRset.from_json(raw["expected"]), RRset.from_json(raw["desired"]))


def extra_records(served: RRset, wanted: RRset) -> tuple[str, ...]:
    """The records served beyond every wanted one (empty unless `served` is a strict
    superset of a wanted, existing RRset): what a write that could not see another
    writer's addition leaves beside its own records."""
    if not wanted.exists or not set(wanted.rdatas) < set(served.rdatas):
        return ()
    return tuple(r for r in served.rdatas if r not in wanted.rdatas)
