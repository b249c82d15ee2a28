"""`[dns.cloudflare]`: the API token, the API URL, and the zone plan's TTL floor.

Cloudflare refuses TTLs below 60 s on Free, Pro and Business zones and below 30 s on
Enterprise zones (1 means "automatic"): developers.cloudflare.com/dns/manage-dns-records/
reference/ttl/. A rejected TTL comes back as HTTP 400, so mxctl checks every TTL it would
send (dns.ttl, record TTLs, maintenance.low_ttl) at config load instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config.fields import Reader, Table
from orchestrator.config.secrets import Secret
from orchestrator.dns.registry import ProviderSettings

MIN_TTL = 60
ENTERPRISE_MIN_TTL = 30


@dataclass(frozen=True)
class CloudflareSettings(ProviderSettings):
    api_token: Secret
    base_url: str | None
    enterprise: bool = False

    @property
    def min_ttl(self) -> int:
        return ENTERPRISE_MIN_TTL if self.enterprise else MIN_TTL

    def ttl_problem(self, ttl: int) -> str | None:
        if ttl >= self.min_ttl:
            return None
        if self.enterprise:
            return f"{ttl} s is below Cloudflare's minimum TTL of {ENTERPRISE_MIN_TTL} s"
        return (
            f"{ttl} s is below Cloudflare's minimum TTL of {MIN_TTL} s on non-Enterprise "
            f"zones: use {MIN_TTL} or more, or set dns.cloudflare.enterprise = true if the "
            f"zone is on an Enterprise plan ({ENTERPRISE_MIN_TTL} s minimum)"
        )


def parse_cloudflare(reader: Reader, table: Table, where: str) -> CloudflareSettings:
    known = {"api_token", "base_url", "timeout", "enterprise", "allow_insecure_http"}
    reader.reject_unknown(table, known, where)
    insecure = reader.boolean(table, "allow_insecure_http", where, False)
    return CloudflareSettings(
        timeout=reader.number(table, "timeout", where, 10.0, 0.1, 300.0),
        api_token=reader.secret(table, "api_token", where),
        base_url=reader.api_url(table, "base_url", where, False, insecure),
        enterprise=reader.boolean(table, "enterprise", where, False),
    )
