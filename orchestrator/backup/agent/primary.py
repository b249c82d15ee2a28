"""Whether this host is the pair's current primary: backups follow a failover.

The test is the one the world uses to find the primary: the domain's MX, through this host's
resolver, names this host (lowest preference first), and this host is not fenced (the
controller's marker; a fenced old primary still named by a stale MX must not back up).
Right after a failover a cached MX can lag by at most its TTL: then the old primary skips
(it is fenced) and the new one starts with its next run. Two hosts backing up at once is
harmless anyway (restic locks non-exclusively for backups; same host tag, one lineage).
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import FENCE_MARKER


@dataclass(frozen=True)
class Role:
    primary: bool
    why: str


def decide_role(fqdn: str, mx_targets: list[tuple[int, str]], fenced: bool) -> Role:
    """Pure: the role from the MX set (preference, target) and the fence marker."""
    if fenced:
        return Role(False, f"{fqdn} is fenced ({FENCE_MARKER} exists)")
    if not mx_targets:
        return Role(False, "the domain has no MX record")
    best = min(p for p, _ in mx_targets)
    first = sorted(t.rstrip(".").lower() for p, t in mx_targets if p == best)
    if fqdn.lower() in first:
        return Role(True, f"MX names {fqdn}")
    return Role(False, f"MX names {', '.join(first)}, not {fqdn}")


def current_role(fqdn: str, domain: str) -> Role:
    import dns.resolver  # python3-dnspython on the host

    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=5)
    except Exception as exc:  # any DNS failure: not provably primary, so no backup
        return Role(False, f"cannot resolve MX {domain}: {exc.__class__.__name__}")
    targets = [(int(r.preference), r.exchange.to_text()) for r in answer]
    return decide_role(fqdn, targets, FENCE_MARKER.exists())
