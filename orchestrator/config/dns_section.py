"""The `[dns]` section: provider, zones, the records mxctl owns, mail hosts, verification."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from orchestrator.config.fields import Reader, Table, join
from orchestrator.config.secrets import Secret
from orchestrator.dns.records import MANAGED_TYPES, address_type, in_zone, normalise_name

PROVIDER_KINDS = ("rfc2136", "cloudflare", "powerdns")
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


@dataclass(frozen=True)
class Rfc2136Settings:
    server: str
    port: int
    key_name: str
    key_algorithm: str
    key_secret: Secret
    timeout: float
    kind: str = "rfc2136"


@dataclass(frozen=True)
class CloudflareSettings:
    api_token: Secret
    base_url: str | None
    timeout: float
    kind: str = "cloudflare"


@dataclass(frozen=True)
class PowerDnsSettings:
    api_url: str
    api_key: Secret
    server_id: str
    timeout: float
    kind: str = "powerdns"


ProviderSettings = Rfc2136Settings | CloudflareSettings | PowerDnsSettings


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
        {"provider", "zones", "ttl", "records", "mail_hosts", "verify", *PROVIDER_KINDS},
        path,
    )
    kind = reader.string(raw, "provider", path, choices=PROVIDER_KINDS)
    provider = _parse_provider(reader, raw, kind, path)
    zones = tuple(
        _name(reader, z, join(join(path, "zones"), i))
        for i, z in enumerate(reader.strings(raw, "zones", path, required=True))
    )
    if not zones and "zones" in raw:
        reader.problem(join(path, "zones"), "name at least one zone")
    default_ttl = reader.integer(raw, "ttl", path, 300, 30, 86400)
    records = tuple(
        _parse_record(reader, r, join(join(path, "records"), i), zones, default_ttl)
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
    return DnsConfig(provider, zones, records, mail_hosts, verify)


def _name(reader: Reader, value: str, where: str) -> str:
    try:
        return normalise_name(value)
    except ValueError as exc:
        reader.problem(where, str(exc))
        return ""


def _parse_provider(reader: Reader, raw: Table, kind: str, path: str) -> ProviderSettings:
    for other in PROVIDER_KINDS:
        if other != kind and other in raw and kind:
            reader.problem(join(path, other), f"settings for {other}, but provider is {kind!r}")
    where = join(path, kind or "rfc2136")
    table = reader.table(raw, kind, path) if kind else {}
    timeout = reader.number(table, "timeout", where, 10.0, 0.1, 300.0)
    if kind == "cloudflare":
        reader.reject_unknown(table, {"api_token", "base_url", "timeout"}, where)
        base_url = table.get("base_url")
        if base_url is not None and not (
            isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
        ):
            reader.problem(join(where, "base_url"), "must be an http(s) URL")
            base_url = None
        return CloudflareSettings(reader.secret(table, "api_token", where), base_url, timeout)
    if kind == "powerdns":
        reader.reject_unknown(table, {"api_url", "api_key", "server_id", "timeout"}, where)
        url = reader.string(table, "api_url", where)
        if url and not url.startswith(("http://", "https://")):
            reader.problem(join(where, "api_url"), "must be an http(s) URL")
        return PowerDnsSettings(
            url.rstrip("/"),
            reader.secret(table, "api_key", where),
            reader.string(table, "server_id", where, default="localhost"),
            timeout,
        )
    known = {"server", "port", "key_name", "key_algorithm", "key_secret", "timeout"}
    reader.reject_unknown(table, known, where)
    server = reader.string(table, "server", where)
    if server:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            reader.problem(join(where, "server"), "must be an IP address (the primary's)")
    return Rfc2136Settings(
        server,
        reader.integer(table, "port", where, 53, 1, 65535),
        _name(reader, reader.string(table, "key_name", where), join(where, "key_name")),
        reader.string(table, "key_algorithm", where, "hmac-sha256", TSIG_ALGORITHMS),
        reader.secret(table, "key_secret", where),
        timeout,
    )


def _parse_record(
    reader: Reader, raw: Table, where: str, zones: tuple[str, ...], default_ttl: int
) -> OwnedRecord:
    reader.reject_unknown(raw, {"name", "type", "ttl", "priority"}, where)
    name = _name(reader, reader.string(raw, "name", where), join(where, "name"))
    rtype = reader.string(raw, "type", where, choices=MANAGED_TYPES)
    if name and zones and not any(in_zone(name, z) for z in zones if z):
        reader.problem(join(where, "name"), f"{name} is in none of the zones {', '.join(zones)}")
    ttl = reader.integer(raw, "ttl", where, default_ttl, 30, 86400)
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
