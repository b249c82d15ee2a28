"""Build the configured provider through the registry; no provider kind is named here."""

from __future__ import annotations

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.provider import BaseProvider, Nameserver
from orchestrator.dns.registry import provider_class
from orchestrator.dns.retry import RetryPolicy
from orchestrator.dns.verify import Verifier


def make_provider(
    config: DnsConfig, clock: Clock = SYSTEM_CLOCK, policy: RetryPolicy | None = None
) -> BaseProvider:
    policy = policy or RetryPolicy(clock=clock, default_budget=config.verify.deadline)
    return provider_class(config.provider_kind)(config.provider, config.zones, policy, clock)


def make_verifier(
    config: DnsConfig, provider: BaseProvider, clock: Clock = SYSTEM_CLOCK
) -> Verifier:
    def lookup(zone: str) -> list[Nameserver]:
        return provider.authoritative_servers(zone)

    return Verifier(config.verify, config.zones, lookup, clock)
