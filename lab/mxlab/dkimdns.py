"""Publish the pair's DKIM records in the lab's DNS (RFC 2136 + the lab's TSIG key).

In production the operator publishes what the deploy prints; the lab publishes its own, so
the tests can verify signatures against the record a real verifier would fetch. (A small,
deliberate overlap with orchestrator/dns, which owns MX changes and their safety rules; this
only ever writes TXT records under _domainkey.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.update

from mxlab.state import LabState
from orchestrator.deploy.dkim import DkimRecord
from orchestrator.errors import LabError

TTL = 300
TIMEOUT = 3.0


def _zone_of(name: str, zones: Sequence[str]) -> str:
    for zone in sorted(zones, key=len, reverse=True):
        if name == zone or name.endswith("." + zone):
            return zone
    raise LabError(f"{name} is in none of the lab zones ({', '.join(zones)})")


def _primary(lab: LabState) -> str:
    primaries = [h.address for h in lab.hosts.values() if h.role == "dns-primary"]
    if not primaries:
        raise LabError("the lab has no dns-primary host")
    return primaries[0]


def lookup_txt(server: str, name: str) -> list[bytes] | None:
    """The TXT record at `name` as one value per RR (strings joined), asked of `server`."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    try:
        response = dns.query.udp(query, server, timeout=TIMEOUT)
    except (dns.exception.DNSException, OSError) as exc:
        raise LabError(f"DNS query for {name} TXT at {server} failed: {exc}") from None
    if response.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return [b"".join(rd.strings) for rd in rrset]
    return None


def publish(lab: LabState, records: Sequence[DkimRecord]) -> list[str]:
    """Replace each record's TXT at the lab primary when it differs; names of those changed."""
    server = _primary(lab)
    secret = Path(lab.tsig_secret_file).read_text().strip()
    keyring = dns.tsig.Key(lab.tsig_name, secret, lab.tsig_algorithm)
    changed: list[str] = []
    for record in records:
        wanted = record.value.encode()
        if lookup_txt(server, record.name) == [wanted]:
            continue
        zone = _zone_of(record.name, lab.zones)
        update = dns.update.UpdateMessage(zone, keyring=keyring)
        rdata = dns.rdtypes.ANY.TXT.TXT(
            dns.rdataclass.IN, dns.rdatatype.TXT, [c.encode() for c in record.chunks]
        )
        update.replace(dns.name.from_text(record.name), TTL, rdata)
        try:
            response = dns.query.tcp(update, server, timeout=TIMEOUT)
        except (dns.exception.DNSException, OSError) as exc:
            raise LabError(f"DNS update of {record.name} at {server} failed: {exc}") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise LabError(
                f"DNS update of {record.name} refused by {server}: "
                f"{dns.rcode.to_text(response.rcode())}"
            )
        changed.append(record.name)
    return changed
