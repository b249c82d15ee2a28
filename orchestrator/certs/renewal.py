"""When a certificate is due for renewal: a pure function of what it is and the time.

Renew at two thirds of the lifetime (Let's Encrypt's advice: a 90-day certificate is
renewed 30 days before it expires), so a failing DNS provider or ACME server has a third
of the lifetime to recover before anything breaks. A certificate that does not cover every
name a host may serve is due at once: after a failover the standby must serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

RENEW_AT_FRACTION = 2 / 3


@dataclass(frozen=True)
class CertFacts:
    """What a renewal decision needs to know about an installed certificate."""

    names: frozenset[str]  # DNS names of the subjectAltName, lower-case, no trailing dot
    not_before: datetime
    not_after: datetime
    issuer: str = ""
    serial: str = ""

    def renew_at(self) -> datetime:
        return self.not_before + (self.not_after - self.not_before) * RENEW_AT_FRACTION

    def to_json(self) -> dict[str, Any]:
        return {
            "names": sorted(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "renew_at": self.renew_at().isoformat(),
            "issuer": self.issuer,
            "serial": self.serial,
        }


@dataclass(frozen=True)
class RenewalDecision:
    due: bool
    reason: str


def renewal_due(
    cert: CertFacts | None, wanted: frozenset[str], now: datetime, force: bool = False
) -> RenewalDecision:
    """Is a new certificate needed now, and why (the sentence the CLI and journal show)."""
    if cert is None:
        return RenewalDecision(True, "no certificate installed")
    missing = sorted(wanted - cert.names)
    if missing:
        return RenewalDecision(True, f"certificate does not cover {', '.join(missing)}")
    if cert.not_after <= cert.not_before:
        return RenewalDecision(True, "certificate has no valid lifetime (not_after <= not_before)")
    if now >= cert.not_after:
        return RenewalDecision(True, f"certificate expired at {cert.not_after.isoformat()}")
    if force:
        return RenewalDecision(True, "renewal forced")
    renew_at = cert.renew_at()
    if now >= renew_at:
        return RenewalDecision(True, f"two thirds of the lifetime passed at {renew_at.isoformat()}")
    return RenewalDecision(
        False,
        f"valid until {cert.not_after.isoformat()}; renewal due at {renew_at.isoformat()}",
    )
