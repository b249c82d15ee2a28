"""Direct queries to one nameserver (RD off), translated into our RRset and our errors."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from orchestrator.dns.records import RRset
from orchestrator.errors import DnsUnavailable


def query(address: str, port: int, name: str, rtype: str, timeout: float) -> dns.message.Message:
    """Ask one server directly, recursion not desired; retry over TCP when truncated."""
    request = dns.message.make_query(name, rtype)
    request.flags &= ~dns.flags.RD
    where = f"{address} port {port}"
    try:
        response = dns.query.udp(request, address, port=port, timeout=timeout)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(request, address, port=port, timeout=timeout)
    except dns.exception.Timeout:
        raise DnsUnavailable(
            f"nameserver {where} did not answer {name} {rtype} in {timeout:g} s"
        ) from None
    except (OSError, dns.exception.DNSException) as exc:
        raise DnsUnavailable(f"nameserver {where} failed for {name} {rtype}: {exc}") from None
    return response


def is_authoritative(response: dns.message.Message) -> bool:
    return bool(response.flags & dns.flags.AA)


def answer_rrset(response: dns.message.Message, name: str, rtype: str) -> RRset:
    """The RRset for name/type in the answer; absent on NXDOMAIN or NODATA."""
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return RRset(name, rtype)
    if rcode != dns.rcode.NOERROR:
        raise DnsUnavailable(f"answered {dns.rcode.to_text(rcode)} for {name} {rtype}")
    wanted = dns.name.from_text(name)
    for rrset in response.answer:
        if (
            rrset.name == wanted
            and rrset.rdtype == dns.rdatatype.from_text(rtype)
            and rrset.rdclass == dns.rdataclass.IN
        ):
            return RRset(name, rtype, rrset.ttl, tuple(r.to_text() for r in rrset))
    return RRset(name, rtype)


def soa_serial(response: dns.message.Message) -> int | None:
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def resolve_system(name: str, rtype: str) -> RRset:
    """A name outside our zones (an MX target, a nameserver): ask the system resolver."""
    try:
        answer = dns.resolver.resolve(name, rtype, lifetime=5.0)
    except dns.exception.DNSException:
        return RRset(name, rtype)
    rrset = answer.rrset
    if rrset is None:
        return RRset(name, rtype)
    return RRset(name, rtype, rrset.ttl, tuple(r.to_text() for r in rrset))
