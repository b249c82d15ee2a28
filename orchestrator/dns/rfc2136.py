"""RFC 2136 dynamic updates signed with TSIG: a real server-side compare-and-swap.

The update carries the expected RRset as a prerequisite (or "absent" when it should not
exist), so the server applies it only if nothing changed since we read: a stale
expectation answers NXRRSET and changes nothing. Reads go to the same primary, directly.
"""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataset
import dns.tsig
import dns.update

from orchestrator.clock import Clock
from orchestrator.config.fields import Reader, Table, join
from orchestrator.config.secrets import Secret
from orchestrator.dns import wire
from orchestrator.dns.provider import BaseProvider, Nameserver, Outcome
from orchestrator.dns.records import Change, RRset, normalise_name
from orchestrator.dns.registry import ProviderSettings
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import DnsAuthError, DnsError, DnsUnavailable, StaleExpectation

STALE_RCODES = {dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN}
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


@dataclass(frozen=True)
class Rfc2136Settings(ProviderSettings):
    server: str
    port: int
    key_name: str
    key_algorithm: str
    key_secret: Secret


def parse_rfc2136(reader: Reader, table: Table, where: str) -> Rfc2136Settings:
    known = {"server", "port", "key_name", "key_algorithm", "key_secret", "timeout"}
    reader.reject_unknown(table, known, where)
    server = reader.string(table, "server", where)
    if server:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            reader.problem(join(where, "server"), "must be an IP address (the primary's)")
    key_name = reader.string(table, "key_name", where)
    if key_name:
        try:
            key_name = normalise_name(key_name)
        except ValueError as exc:
            reader.problem(join(where, "key_name"), str(exc))
            key_name = ""
    return Rfc2136Settings(
        timeout=reader.number(table, "timeout", where, 10.0, 0.1, 300.0),
        server=server,
        port=reader.integer(table, "port", where, 53, 1, 65535),
        key_name=key_name,
        key_algorithm=reader.string(table, "key_algorithm", where, "hmac-sha256", TSIG_ALGORITHMS),
        key_secret=reader.secret(table, "key_secret", where),
    )


class Rfc2136Provider(BaseProvider):
    kind: ClassVar[str] = "rfc2136"
    SERVER_SIDE_CAS: ClassVar[bool] = True
    BATCH_WRITES: ClassVar[bool] = True  # one UPDATE per zone: one serial, one NOTIFY
    APPLIED_ON_WRITE: ClassVar[bool] = True  # NOERROR: the primary has committed it

    def __init__(
        self,
        settings: Rfc2136Settings,
        zones: tuple[str, ...],
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, zones, policy, clock)
        self.settings = settings
        self.where = f"{settings.server} port {settings.port}"
        try:
            self.key = dns.tsig.Key(
                settings.key_name, settings.key_secret.reveal(), settings.key_algorithm
            )
        except (binascii.Error, ValueError, dns.exception.DNSException):
            raise DnsAuthError(
                f"TSIG key {settings.key_name} ({settings.key_secret.reference}): the secret is "
                "not valid base64; it must hold the base64 secret only"
            ) from None

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> Rfc2136Settings:
        return parse_rfc2136(reader, table, where)

    def _query(self, name: str, rtype: str) -> dns.message.Message:
        self.count_request()
        response = wire.query(
            self.settings.server, self.settings.port, name, rtype, self.settings.timeout
        )
        return response

    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        response = self._query(name, rtype)
        if not wire.is_authoritative(response):
            raise DnsError(
                f"{self.where} is not authoritative for {zone} (no AA flag): check "
                "dns.rfc2136.server names the zone's primary"
            )
        try:
            return wire.answer_rrset(response, name, rtype)
        except DnsUnavailable as exc:
            raise DnsUnavailable(f"{self.where} {exc}") from None

    def _write(self, zone: str, change: Change) -> Outcome:
        return self._write_batch(zone, [change])[0]

    def _write_batch(self, zone: str, changes: Sequence[Change]) -> list[Outcome]:
        """One UPDATE: every expectation as a prerequisite, then every replacement."""
        update = dns.update.UpdateMessage(zone, keyring=self.key)
        for change in changes:
            name = dns.name.from_text(change.desired.name)
            rtype = change.desired.rtype
            if change.expected.exists:
                rdatas = list(change.expected.rdatas)
                update.present(name, dns.rdataset.from_text_list("IN", rtype, 0, rdatas))
            else:
                update.absent(name, rtype)
        # Address records come first in `changes`, so an MX never names a missing target.
        for change in changes:
            name = dns.name.from_text(change.desired.name)
            rtype = change.desired.rtype
            if change.desired.exists:
                update.replace(name, change.desired.ttl, rtype, *change.desired.rdatas)
            else:
                update.delete(name, rtype)
        what = ", ".join(f"{c.desired.name} {c.desired.rtype}" for c in changes)
        response = self._send(update, what)
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return [Outcome.APPLIED] * len(changes)
        if rcode in STALE_RCODES:
            raise StaleExpectation(f"{self.where} answered {dns.rcode.to_text(rcode)}")
        raise self._rcode_error(rcode, what)

    def _send(self, update: dns.update.UpdateMessage, what: str) -> dns.message.Message:
        key = f"TSIG key {self.settings.key_name}"
        self.count_request()
        try:
            return dns.query.tcp(
                update, self.settings.server, port=self.settings.port, timeout=self.settings.timeout
            )
        except dns.tsig.PeerBadKey:
            raise DnsAuthError(
                f"{self.where} does not know {key}: check dns.rfc2136.key_name and the "
                "server's key statement"
            ) from None
        except (dns.tsig.PeerBadSignature, dns.tsig.BadSignature):
            raise DnsAuthError(
                f"{self.where} rejected the signature of {key}: the secret in "
                f"{self.settings.key_secret.reference} does not match the server's"
            ) from None
        except (dns.tsig.PeerBadTime, dns.tsig.PeerBadTruncation) as exc:
            raise DnsAuthError(f"{self.where} rejected {key}: {exc} (check clocks)") from None
        except dns.exception.Timeout:
            raise DnsUnavailable(
                f"{self.where} did not answer the update of {what} "
                f"within {self.settings.timeout:g} s"
            ) from None
        except dns.exception.FormError as exc:
            if "requires a TSIG" not in str(exc):
                raise DnsUnavailable(f"update to {self.where} failed: {exc}") from None
            # PowerDNS answers an update it cannot authenticate without any signature.
            raise DnsAuthError(
                f"{self.where} answered the update signed with {key} unsigned: it does not "
                f"know the key or the secret in {self.settings.key_secret.reference} is wrong"
            ) from None
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            raise DnsUnavailable(f"update to {self.where} failed: {exc}") from None

    def _rcode_error(self, rcode: dns.rcode.Rcode, what: str) -> DnsError:
        text = dns.rcode.to_text(rcode)
        key = self.settings.key_name
        if rcode == dns.rcode.REFUSED:
            return DnsError(
                f"{self.where} REFUSED the update of {what} signed with TSIG key {key}: the "
                f"zone's update-policy must grant {key} this name and type (BIND also refuses "
                "an MX whose in-zone target has no A/AAAA record)"
            )
        if rcode == dns.rcode.NOTAUTH:
            return DnsAuthError(
                f"{self.where} answered NOTAUTH for {what}: it does not accept TSIG key {key} "
                "for this zone, or is not the zone's primary"
            )
        if rcode == dns.rcode.SERVFAIL:
            return DnsUnavailable(f"{self.where} answered SERVFAIL to the update of {what}")
        return DnsError(f"{self.where} answered {text} to the update of {what}")

    def _nameservers(self, zone: str) -> list[Nameserver]:
        return self._servers_at(sorted(self._read(zone, zone, "NS").rdatas))
