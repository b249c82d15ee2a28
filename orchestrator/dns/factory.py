"""Build the configured provider; the one place that knows every provider kind."""

from __future__ import annotations

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.dns_section import (
    CloudflareSettings,
    DnsConfig,
    PowerDnsSettings,
    Rfc2136Settings,
)
from orchestrator.dns.provider import BaseProvider, Nameserver
from orchestrator.dns.retry import RetryPolicy
from orchestrator.dns.verify import Verifier


def make_provider(
    config: DnsConfig, clock: Clock = SYSTEM_CLOCK, policy: RetryPolicy | None = None
) -> BaseProvider:
    policy = policy or RetryPolicy(clock=clock, default_budget=config.verify.deadline)
    settings = config.provider
    if isinstance(settings, Rfc2136Settings):
        from orchestrator.dns.rfc2136 import Rfc2136Provider

        return Rfc2136Provider(settings, config.zones, policy, clock)
    if isinstance(settings, CloudflareSettings):
        from orchestrator.dns.cloudflare import CloudflareProvider

        return CloudflareProvider(settings, config.zones, policy, clock)
    if isinstance(settings, PowerDnsSettings):
        from orchestrator.dns.powerdns import PowerDnsProvider

        return PowerDnsProvider(settings, config.zones, policy, clock)
    raise TypeError(f"unknown provider settings {type(settings).__name__}")


def make_verifier(
    config: DnsConfig, provider: BaseProvider, clock: Clock = SYSTEM_CLOCK
) -> Verifier:
    def lookup(zone: str) -> list[Nameserver]:
        return provider.authoritative_servers(zone)

    return Verifier(config.verify, config.zones, lookup, clock)
