"""What a failover costs the people who use the mail, from the configuration alone.

A mail program asks its resolver for the client-facing name and keeps the answer for its
TTL: after the primary dies it reconnects to the new one only once the controller has
detected the death (interval x failure_threshold), the DNS change is served everywhere,
and the cached answer has expired. A remote MTA needs none of that while the standby is
published as a backup MX: it tries the standby in the same delivery attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config.controller_section import PolicyConfig
from orchestrator.config.dns_section import DnsConfig

# Compare-and-swap plus every authoritative server serving it: bench/dns.py measures
# 0.03-1.6 s per provider; 2 s covers them with room.
DNS_ALLOWANCE_S = 2.0


@dataclass(frozen=True)
class DowntimeBound:
    detection_s: float
    dns_s: float
    client_ttl_s: int  # the longest TTL among the owned client-facing (A/AAAA) records

    @property
    def client_s(self) -> float:
        return self.detection_s + self.dns_s + self.client_ttl_s

    def describe(self) -> str:
        return (
            f"worst-case client downtime {self.client_s:g} s = {self.detection_s:g} s "
            f"detection + {self.dns_s:g} s DNS + {self.client_ttl_s} s client-name TTL"
        )


def downtime_bound(policy: PolicyConfig, dns: DnsConfig) -> DowntimeBound:
    client_ttls = [r.ttl for r in dns.records if r.rtype in ("A", "AAAA")]
    return DowntimeBound(
        detection_s=policy.interval * policy.failure_threshold,
        dns_s=DNS_ALLOWANCE_S,
        client_ttl_s=max(client_ttls, default=0),
    )


def downtime_problem(bound: DowntimeBound, limit: float) -> str | None:
    """Why the bound is unacceptable under `policy.max_client_downtime`, or None."""
    if bound.client_s <= limit:
        return None
    return (
        f"{bound.describe()} exceeds policy.max_client_downtime {limit:g} s: lower "
        "dns.client_ttl or policy.interval x policy.failure_threshold"
    )
