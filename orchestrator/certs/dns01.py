"""DNS-01 challenge records, written and removed through the configured DNS provider.

Each validation string is added to the TXT RRset at `_acme-challenge.<name>` with a
compare-and-swap (read, add, CAS), so values of other orders (a wildcard and its base
name share one owner) and other writers are kept. Before the ACME server is asked to
validate, every authoritative nameserver must serve the records (the Verifier, as for a
failover). `cleanup` removes exactly our values, whatever else is there by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.records import Change, RRset, normalise_name
from orchestrator.dns.verify import VerifyReport
from orchestrator.errors import DnsError, StaleExpectation

log = logging.getLogger(__name__)

CHALLENGE_TTL = 60
CAS_ATTEMPTS = 3  # a concurrent writer of the same TXT set: re-read and try again

# desired RRsets -> report once all authoritative servers serve them (Verifier.wait)
Propagation = Callable[[tuple[RRset, ...]], VerifyReport]


def challenge_name(domain: str) -> str:
    return normalise_name("_acme-challenge." + domain.removeprefix("*."))


def _quoted(value: str) -> str:
    return '"' + value + '"'


class ChallengeRecords:
    def __init__(
        self, provider: BaseProvider, propagation: Propagation | None, ttl: int = CHALLENGE_TTL
    ) -> None:
        self.provider = provider
        self.propagation = propagation
        self.ttl = ttl
        self.published: dict[str, set[str]] = {}  # owner -> our quoted values

    def publish(self, domain: str, validation: str) -> str:
        owner = challenge_name(domain)
        value = _quoted(validation)
        self._edit(owner, lambda values: values | {value})
        self.published.setdefault(owner, set()).add(value)
        log.info("published DNS-01 challenge at %s", owner)
        return owner

    def wait_served(self) -> None:
        """Return once the provider and every authoritative server serve our values."""
        if self.propagation is None or not self.published:
            return
        desired = tuple(self.provider.read(owner, "TXT") for owner in sorted(self.published))
        report = self.propagation(desired)
        if not report.ok:
            found = [*report.problems, *(p for s in report.servers for p in s.problems)]
            raise DnsError(
                "challenge records not served by every authoritative nameserver: "
                + "; ".join(found)
            )

    def cleanup(self) -> list[str]:
        """Remove our values; problems are returned (never raised: cleanup runs in a
        `finally` and must not hide the issuance error)."""
        problems = []
        for owner, ours in sorted(self.published.items()):
            try:
                self._edit(owner, lambda values, ours=ours: values - ours)  # type: ignore[misc]
                log.info("removed DNS-01 challenge at %s", owner)
            except DnsError as exc:
                problems.append(f"{owner} TXT not cleaned up: {exc}")
        self.published.clear()
        return problems

    def _edit(self, owner: str, edit: Callable[[set[str]], set[str]]) -> None:
        for attempt in range(CAS_ATTEMPTS):
            current = self.provider.read(owner, "TXT")
            values = edit(set(current.rdatas))
            if values == set(current.rdatas):
                return
            ttl = current.ttl if current.exists else self.ttl
            desired = RRset(owner, "TXT", ttl if values else 0, tuple(values))
            try:
                self.provider.apply_change(Change(current, desired))
                return
            except StaleExpectation:
                if attempt == CAS_ATTEMPTS - 1:
                    raise
