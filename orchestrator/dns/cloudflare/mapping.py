"""Cloudflare DNS records <-> our RRsets, and how to rewrite one without a gap.

Cloudflare keeps one record per rdata, each with its own id; MX content is the host
without the trailing dot and `priority` is separate. The SDK parses ttl and priority as
floats. TTL 1 means "automatic" (300 s). Mail names are never proxied: a proxied record
is read as such (`RRset.proxied`), so it differs from the desired RRset and is fixed.

A batch commits in one transaction, but Cloudflare documents that its edge takes the
changes one record at a time (developers.cloudflare.com/api/resources/dns/subresources/
records/methods/batch/: "the propagation of changes is not atomic"). Deleting a whole set
and posting the new one can therefore let an edge serve an empty MX or A set, which
resolvers may cache. `rewrite` edits records in place by id instead, posts only the
records beyond the current count, and leaves surplus records for a later delete, sent
once the new records exist: at every step the name has records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dns.records import RRset

AUTOMATIC_TTL = 300


@dataclass(frozen=True)
class RemoteRecord:
    id: str
    rdata: str  # canonical, as in RRset.rdatas
    ttl: int
    proxied: bool


@dataclass(frozen=True)
class RemoteRRset:
    """An RRset as Cloudflare holds it: the RRset and its records, by id."""

    rrset: RRset
    records: tuple[RemoteRecord, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.records)


@dataclass(frozen=True)
class Rewrite:
    """The record operations that turn one RRset into another, in two steps: first
    `patches` and `posts` (one batch), then `deletes` (a second batch, once they exist)."""

    patches: list[dict[str, Any]] = field(default_factory=list)  # bodies with "id"
    posts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.patches or self.posts or self.deletes)


def from_records(name: str, rtype: str, records: Iterable[Any]) -> RemoteRRset:
    remote: list[RemoteRecord] = []
    for record in records:
        if getattr(record, "type", None) != rtype:
            continue
        if str(getattr(record, "name", "")).lower().rstrip(".") != name.rstrip("."):
            continue
        content = str(record.content)
        if rtype == "MX":
            content = f"{int(record.priority or 0)} {content.rstrip('.')}."
        ttl = int(record.ttl)
        rdata = RRset(name, rtype, 1, (content,)).rdatas[0]
        remote.append(
            RemoteRecord(
                str(record.id),
                rdata,
                AUTOMATIC_TTL if ttl == 1 else ttl,
                bool(getattr(record, "proxied", False)),
            )
        )
    remote.sort(key=lambda r: r.id)
    rrset = RRset(
        name,
        rtype,
        min((r.ttl for r in remote), default=0),
        tuple(r.rdata for r in remote),
        any(r.proxied for r in remote),
    )
    return RemoteRRset(rrset, tuple(remote))


def body(rrset: RRset, rdata: str) -> dict[str, Any]:
    """A record body for one rdata of `rrset`, never proxied."""
    record: dict[str, Any] = {
        "name": rrset.name.rstrip("."),
        "type": rrset.rtype,
        "ttl": rrset.ttl,
        "proxied": False,
    }
    if rrset.rtype == "MX":
        priority, host = rdata.split()
        record["priority"] = int(priority)
        record["content"] = host.rstrip(".")
    else:
        record["content"] = rdata
    return record


def to_records(rrset: RRset) -> list[dict[str, Any]]:
    """Create-record bodies for every rdata of `rrset` (never proxied)."""
    return [body(rrset, rdata) for rdata in rrset.rdatas]


def rewrite(current: RemoteRRset, desired: RRset) -> Rewrite:
    """Operations from `current` to `desired` that never leave the name without records.

    A record already holding a desired rdata keeps it (its TTL and proxy status set
    right); the others are edited in place to the remaining rdatas; rdatas beyond them
    are posted; records beyond them are deleted, last. Every record read is in a patch or
    a delete, even one already right (patched with its own values), so the batch fails
    with 81044 if any of them vanished since the read: the compare covers the whole set.
    """
    wanted = list(desired.rdatas)
    ops = Rewrite()
    spare: list[RemoteRecord] = []
    for record in current.records:
        if record.rdata in wanted:
            wanted.remove(record.rdata)
            ops.patches.append({"id": record.id, **body(desired, record.rdata)})
        else:
            spare.append(record)
    for record, rdata in zip(spare, wanted, strict=False):
        ops.patches.append({"id": record.id, **body(desired, rdata)})
    ops.posts.extend(body(desired, rdata) for rdata in wanted[len(spare) :])
    ops.deletes.extend(record.id for record in spare[len(wanted) :])
    return ops


def in_progress(current: RRset, expected: RRset, desired: RRset) -> bool:
    """`current` is a step of rewriting `expected` into `desired` (its first batch went
    through, the surplus deletes did not): only their rdatas, some new ones present."""
    now, old, new = set(current.rdatas), set(expected.rdatas), set(desired.rdatas)
    return bool(now) and now <= old | new and bool(now & (new - old))
