"""The `[dns]` section: provider, zones, the records mxctl owns, mail hosts, verification.

The `[dns.<kind>]` table belongs to the provider: `orchestrator.dns.registry` finds the
provider module, which parses it into its own settings. This section knows no kind.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from orchestrator.config.fields import Reader, Table, join
from orchestrator.dns.records import MANAGED_TYPES, address_type, in_zone, normalise_name
from orchestrator.dns.registry import PROVIDERS, ProviderSettings, parse_settings

# Default TTL of the client-facing names (dns.client_ttl).
CLIENT_TTL = 60


@dataclass(frozen=True)
class OwnedRecord:
    """A name+type mxctl may rewrite: an MX of a mail domain, or a client-facing A/AAAA."""

    name: str
    rtype: str
    ttl: int
    priority: int  # MX preference; unused for A/AAAA


@dataclass(frozen=True)
class NameserverAddress:
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if ":" not in self.address else self.address


@dataclass(frozen=True)
class VerifySettings:
    nameservers: tuple[NameserverAddress, ...]  # empty: resolve the zone's NS set
    port: int
    deadline: float
    interval: float
    query_timeout: float
    require_same_serial: bool


@dataclass(frozen=True)
class DnsConfig:
    provider_kind: str  # a key of orchestrator.dns.registry.PROVIDERS
    provider: ProviderSettings
    zones: tuple[str, ...]
    records: tuple[OwnedRecord, ...]
    mail_hosts: dict[str, tuple[str, ...]]  # absolute name -> addresses
    verify: VerifySettings

    def zone_of(self, name: str) -> str | None:
        """The most specific configured zone containing `name`."""
        matches = [z for z in self.zones if in_zone(name, z)]
        return max(matches, key=len) if matches else None

    def owns(self, name: str, rtype: str) -> bool:
        return any(r.name == name and r.rtype == rtype for r in self.records)

    def mail_host(self, name: str) -> tuple[str, tuple[str, ...]] | None:
        try:
            key = normalise_name(name)
        except ValueError:
            return None
        addresses = self.mail_hosts.get(key)
        return None if addresses is None else (key, addresses)


def parse_dns(reader: Reader, raw: Table, path: str = "dns") -> DnsConfig:
    reader.reject_unknown(
        raw,
        {"provider", "zones", "ttl", "client_ttl", "records", "mail_hosts", "verify", *PROVIDERS},
        path,
    )
    kind = reader.string(raw, "provider", path, choices=tuple(PROVIDERS))
    provider = _parse_provider(reader, raw, kind, path)
    zones = tuple(
        _name(reader, z, join(join(path, "zones"), i))
        for i, z in enumerate(reader.strings(raw, "zones", path, required=True))
    )
    if not zones and "zones" in raw:
        reader.problem(join(path, "zones"), "name at least one zone")
    default_ttl = reader.integer(raw, "ttl", path, 300, 30, 86400)
    if raw.get("ttl", 300) == default_ttl:  # else the range check already complained
        _check_ttl(reader, provider, default_ttl, join(path, "ttl"))
    # The client-facing names (A/AAAA) move at a failover and mail programs keep the old
    # answer for its TTL: a short one bounds what users see (mxctl check states the bound).
    client_ttl = reader.integer(raw, "client_ttl", path, CLIENT_TTL, 30, 86400)
    if raw.get("client_ttl", CLIENT_TTL) == client_ttl:
        _check_ttl(reader, provider, client_ttl, join(path, "client_ttl"))
    records = tuple(
        _parse_record(
            reader,
            r,
            join(join(path, "records"), i),
            zones,
            (default_ttl, client_ttl),
            provider,
        )
        for i, r in enumerate(reader.tables(raw, "records", path))
    )
    if not records:
        reader.problem(join(path, "records"), "name at least one owned record ([[dns.records]])")
    seen: set[tuple[str, str]] = set()
    for i, rec in enumerate(records):
        if rec.name and (rec.name, rec.rtype) in seen:
            where = join(join(path, "records"), i)
            reader.problem(where, f"{rec.name} {rec.rtype} is listed twice")
        seen.add((rec.name, rec.rtype))
    mail_hosts = _parse_mail_hosts(reader, reader.table(raw, "mail_hosts", path), path)
    verify = _parse_verify(reader, reader.table(raw, "verify", path, required=False), path)
    return DnsConfig(kind, provider, zones, records, mail_hosts, verify)


def _name(reader: Reader, value: str, where: str) -> str:
    try:
        return normalise_name(value)
    except ValueError as exc:
        reader.problem(where, str(exc))
        return ""


def _parse_provider(reader: Reader, raw: Table, kind: str, path: str) -> ProviderSettings:
    for other in PROVIDERS:
        if other != kind and other in raw and kind:
            reader.problem(join(path, other), f"settings for {other}, but provider is {kind!r}")
    if not kind:
        return ProviderSettings(timeout=10.0)
    return parse_settings(kind, reader, reader.table(raw, kind, path), join(path, kind))


def _check_ttl(reader: Reader, provider: ProviderSettings, ttl: int, where: str) -> None:
    problem = provider.ttl_problem(ttl)
    if problem:
        reader.problem(where, problem)


def _parse_record(
    reader: Reader,
    raw: Table,
    where: str,
    zones: tuple[str, ...],
    default_ttls: tuple[int, int],  # (MX, client-facing A/AAAA)
    provider: ProviderSettings,
) -> OwnedRecord:
    reader.reject_unknown(raw, {"name", "type", "ttl", "priority"}, where)
    name = _name(reader, reader.string(raw, "name", where), join(where, "name"))
    rtype = reader.string(raw, "type", where, choices=MANAGED_TYPES)
    if name and zones and not any(in_zone(name, z) for z in zones if z):
        reader.problem(join(where, "name"), f"{name} is in none of the zones {', '.join(zones)}")
    default_ttl = default_ttls[0] if rtype == "MX" else default_ttls[1]
    ttl = reader.integer(raw, "ttl", where, default_ttl, 30, 86400)
    if raw.get("ttl") == ttl:  # an inherited TTL was checked at dns.ttl
        _check_ttl(reader, provider, ttl, join(where, "ttl"))
    priority = reader.integer(raw, "priority", where, 10, 0, 65535)
    if "priority" in raw and rtype != "MX":
        reader.problem(join(where, "priority"), "only MX records have a priority")
    return OwnedRecord(name, rtype, ttl, priority)


def _parse_mail_hosts(reader: Reader, raw: Table, path: str) -> dict[str, tuple[str, ...]]:
    hosts: dict[str, tuple[str, ...]] = {}
    where = join(path, "mail_hosts")
    if not raw:
        reader.problem(where, "name the mail hosts the MX may point at (name = [addresses])")
    for key in raw:
        host_where = f'{where}."{key}"'
        name = _name(reader, key, host_where)
        addresses = reader.strings(raw, key, where, required=True)
        for i, address in enumerate(addresses):
            try:
                address_type(address)
            except ValueError:
                reader.problem(join(host_where, i), f"{address!r} is not an IP address")
        if not addresses:
            reader.problem(host_where, "needs at least one address")
        if name:
            hosts[name] = tuple(addresses)
    return hosts


def _parse_verify(reader: Reader, raw: Table, path: str) -> VerifySettings:
    where = join(path, "verify")
    known = {"nameservers", "port", "deadline", "interval", "query_timeout", "require_same_serial"}
    reader.reject_unknown(raw, known, where)
    port = reader.integer(raw, "port", where, 53, 1, 65535)
    servers = []
    for i, text in enumerate(reader.strings(raw, "nameservers", where)):
        host, _, port_text = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        try:
            ipaddress.ip_address(host)
            servers.append(NameserverAddress(host, int(port_text) if port_text else port))
        except ValueError:
            reader.problem(join(join(where, "nameservers"), i), f"{text!r} is not ADDRESS[:PORT]")
    return VerifySettings(
        tuple(servers),
        port,
        reader.number(raw, "deadline", where, 120.0, 1.0, 3600.0),
        reader.number(raw, "interval", where, 1.0, 0.01, 60.0),
        reader.number(raw, "query_timeout", where, 2.0, 0.1, 30.0),
        reader.boolean(raw, "require_same_serial", where, True),
    )
