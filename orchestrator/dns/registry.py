"""Which module provides each `dns.provider` kind: the one list to extend (octoDNS style).

A provider is one module holding its settings dataclass, the parser of its
`[dns.<kind>]` table and its provider class; adding one is that module plus one line
below. Entries are import paths, resolved on first use, so loading a config imports only
the SDK of the provider it names (boto3 and the Cloudflare SDK are slow to import).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config.fields import Reader, Table
    from orchestrator.dns.provider import BaseProvider

PROVIDERS: dict[str, str] = {
    "rfc2136": "orchestrator.dns.rfc2136:Rfc2136Provider",
    "cloudflare": "orchestrator.dns.cloudflare.provider:CloudflareProvider",
    "powerdns": "orchestrator.dns.powerdns:PowerDnsProvider",
    "route53": "orchestrator.dns.route53:Route53Provider",
}


@dataclass(frozen=True)
class ProviderSettings:
    """What every provider's settings carry; each provider module subclasses it."""

    timeout: float

    @property
    def min_ttl(self) -> int:
        """The lowest TTL the provider accepts."""
        return 0

    def ttl_problem(self, ttl: int) -> str | None:
        """Why this provider would refuse `ttl`, with the fix; None when it accepts it."""
        return None


def provider_class(kind: str) -> type[BaseProvider]:
    """The provider class registered for `kind`; KeyError for an unknown kind."""
    module_name, _, class_name = PROVIDERS[kind].partition(":")
    cls: type[BaseProvider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def parse_settings(kind: str, reader: Reader, table: Table, where: str) -> ProviderSettings:
    """Parse `[dns.<kind>]` with the provider's own parser; problems go to `reader`."""
    return provider_class(kind).parse_settings(reader, table, where)
