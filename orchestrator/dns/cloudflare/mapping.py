"""Cloudflare DNS records <-> our RRsets.

Cloudflare keeps one record per rdata, each with its own id; MX content is the host
without the trailing dot and `priority` is separate. The SDK parses ttl and priority as
floats. TTL 1 means "automatic" (300 s). Mail names are never proxied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.dns.records import RRset

AUTOMATIC_TTL = 300


@dataclass(frozen=True)
class RemoteRRset:
    """An RRset as Cloudflare holds it: the RRset and the ids of its records."""

    rrset: RRset
    ids: tuple[str, ...]


def from_records(name: str, rtype: str, records: Iterable[Any]) -> RemoteRRset:
    rdatas: list[str] = []
    ids: list[str] = []
    ttls: list[int] = []
    for record in records:
        if getattr(record, "type", None) != rtype:
            continue
        if str(getattr(record, "name", "")).lower().rstrip(".") != name.rstrip("."):
            continue
        content = str(record.content)
        if rtype == "MX":
            content = f"{int(record.priority or 0)} {content.rstrip('.')}."
        rdatas.append(content)
        ids.append(str(record.id))
        ttl = int(record.ttl)
        ttls.append(AUTOMATIC_TTL if ttl == 1 else ttl)
    ttl = min(ttls) if ttls else 0
    return RemoteRRset(RRset(name, rtype, ttl, tuple(rdatas)), tuple(sorted(ids)))


def to_records(rrset: RRset) -> list[dict[str, Any]]:
    """Create-record bodies for every rdata of `rrset` (never proxied)."""
    bodies = []
    for rdata in rrset.rdatas:
        body: dict[str, Any] = {
            "name": rrset.name.rstrip("."),
            "type": rrset.rtype,
            "ttl": rrset.ttl,
            "proxied": False,
        }
        if rrset.rtype == "MX":
            priority, host = rdata.split()
            body["priority"] = int(priority)
            body["content"] = host.rstrip(".")
        else:
            body["content"] = rdata
        bodies.append(body)
    return bodies
