"""Cloudflare: read the records by name and type, compare, then rewrite them by id.

The first batch edits the records just read in place, by id, and posts any extra ones;
Cloudflare runs it in one transaction, so if any of those ids is gone (someone else
changed the RRset, or our own earlier attempt already went through) nothing is applied
and we re-read. Surplus records are deleted by a second batch, once the new ones exist,
so no edge ever serves the name without records (see mapping.rewrite). A retry after a
lost reply re-reads first: the change lands exactly once.

No compare-and-swap of a whole RRset: the batch checks only that the ids it names still
exist. A record another writer adds to the name between our read and our batch is never
seen; the batch succeeds and the name keeps it (records carry no revision, and no batch
operation can require "the set is still exactly these ids"). Only the verification at the
authoritative servers catches it (orchestrator/dns/verify.py names the extra record). The
stand-in (lab/mxlab/standins/cloudflare.py) is kinder: it serves one request at a time
under one lock, so the window opens only when a test opens it
(tests/dns/test_cloudflare_verify.py); at Cloudflare it is open between every read and
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from orchestrator.clock import Clock
from orchestrator.config.fields import Reader, Table
from orchestrator.dns.cloudflare import mapping
from orchestrator.dns.cloudflare.settings import CloudflareSettings, parse_cloudflare
from orchestrator.dns.cloudflare.transport import CloudflareApiError, build_client, call
from orchestrator.dns.provider import BaseProvider, Nameserver, Outcome
from orchestrator.dns.records import Change, RRset, extra_records
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import DnsError, DnsUnavailable, StaleExpectation

# 81044: record does not exist; 81058: an identical record already exists.
STALE_CODES = {81044, 81058}
# Records one batch may touch on a Free zone (3,500 on paid plans):
# developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/
BATCH_LIMIT = 200


class CloudflareProvider(BaseProvider):
    kind: ClassVar[str] = "cloudflare"
    BATCH_WRITES: ClassVar[bool] = True  # one batch (one transaction) per zone

    def __init__(
        self,
        settings: CloudflareSettings,
        zones: tuple[str, ...],
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        per_page: int = 100,
    ) -> None:
        super().__init__(settings, zones, policy, clock)
        self.settings = settings
        self.per_page = per_page
        self.credential = f"dns.cloudflare.api_token ({settings.api_token.reference or 'set'})"
        self.client = build_client(settings, self._on_request)
        self._zones: dict[str, tuple[str, list[str]]] = {}  # name -> (id, name servers)

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> CloudflareSettings:
        return parse_cloudflare(reader, table, where)

    def _on_request(self, _request: httpx.Request) -> None:
        self.count_request()

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, fn: Any) -> Any:
        return call(what, fn, self.credential)

    def _zone(self, zone: str) -> tuple[str, list[str]]:
        if zone not in self._zones:
            bare = zone.rstrip(".")
            page = self._call(
                f"zone lookup {bare}", lambda: self.client.zones.list(name=bare, per_page=50)
            )
            found = [z for z in page.result if z.name.lower() == bare]
            if not found:
                raise DnsError(
                    f"Cloudflare has no zone named {bare} visible to the token in "
                    f"{self.credential}: check dns.zones and the token's zone resources"
                )
            self._zones[zone] = (
                found[0].id,
                [f"{ns.lower().rstrip('.')}." for ns in found[0].name_servers],
            )
        return self._zones[zone]

    def _remote(self, zone: str, name: str, rtype: str) -> mapping.RemoteRRset:
        zone_id = self._zone(zone)[0]
        what = f"list {name} {rtype}"
        page = self._call(
            what,
            lambda: self.client.dns.records.list(
                zone_id=zone_id,
                type=rtype,  # type: ignore[arg-type]
                name={"exact": name.rstrip(".")},
                per_page=self.per_page,
            ),
        )
        records = list(page.result)
        # Fetch further pages only when this one was full: no request for an empty page.
        while len(page.result) >= self.per_page:
            page = self._call(what, page.get_next_page)
            records.extend(page.result)
        return mapping.from_records(name, rtype, records)

    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        return self._remote(zone, name, rtype).rrset

    def _write(self, zone: str, change: Change) -> Outcome:
        return self._write_batch(zone, [change])[0]

    def _write_batch(self, zone: str, changes: Sequence[Change]) -> list[Outcome]:
        """Read every RRset, check every expectation, then rewrite the zone's records."""
        remotes = {c.key: self._remote(zone, *c.key) for c in changes}
        outcomes = []
        for change in changes:
            current = remotes[change.key].rrset
            if current.serves_as(change.desired):
                outcomes.append(Outcome.ALREADY)
            elif current.same_data(change.expected) or mapping.in_progress(
                current, change.expected, change.desired
            ):
                outcomes.append(Outcome.APPLIED)
            else:
                raise StaleExpectation(f"Cloudflare serves {current.describe()}")
        todo = [c for c, o in zip(changes, outcomes, strict=True) if o is Outcome.APPLIED]
        rewrites = [mapping.rewrite(remotes[c.key], c.desired) for c in todo]
        what = ", ".join(f"{c.desired.name} {c.desired.rtype}" for c in todo)
        patches = [p for r in rewrites for p in r.patches]
        posts = [p for r in rewrites for p in r.posts]
        deletes = [d for r in rewrites for d in r.deletes]
        if patches or posts:
            self._batch(zone, f"update of {what}", patches=patches, posts=posts)
        if deletes:
            # Only now that every new record exists: the surplus ones go.
            self._batch(zone, f"removal of surplus records of {what}", deletes=deletes)
        return outcomes

    def _batch(
        self,
        zone: str,
        what: str,
        patches: list[dict[str, Any]] | None = None,
        posts: list[dict[str, Any]] | None = None,
        deletes: list[str] | None = None,
    ) -> None:
        zone_id = self._zone(zone)[0]
        operations = len(patches or ()) + len(posts or ()) + len(deletes or ())
        if operations > BATCH_LIMIT:
            raise DnsError(
                f"Cloudflare: the {what} needs {operations} record operations, more than "
                f"the {BATCH_LIMIT} one batch may hold on every plan: reduce dns.records"
            )
        try:
            result = self._call(
                f"batch {what}",
                lambda: self.client.dns.records.batch(
                    zone_id=zone_id,
                    deletes=[{"id": i} for i in deletes or ()],
                    patches=patches or [],  # type: ignore[arg-type]
                    posts=posts or [],  # type: ignore[arg-type]
                ),
            )
        except CloudflareApiError as exc:
            if STALE_CODES.intersection(exc.codes):
                raise StaleExpectation(str(exc)) from None
            raise
        if result is None:
            # A 200 with success:false: the SDK gives None. Nothing says whether it was
            # applied, so retry; the next attempt re-reads first.
            raise DnsUnavailable(f"Cloudflare answered success:false to the batch {what}")

    def _is_applied(self, zone: str, change: Change) -> bool:
        """Our records are in place, even beside a record another writer added meanwhile
        (the batch cannot refuse that): waiting would not remove it. The verification at
        the nameservers reports it by name, as the step that fails."""
        current = self._read(zone, *change.key)
        if current.serves_as(change.desired):
            return True
        mine = RRset(current.name, current.rtype, current.ttl, change.desired.rdatas,
                     current.proxied)  # fmt: skip
        return bool(extra_records(current, change.desired)) and mine.serves_as(change.desired)

    def _nameservers(self, zone: str) -> list[Nameserver]:
        return self._servers_at(self._zone(zone)[1])
