"""Ask each authoritative server directly (recursion off, AA required) for the owned names.

Over TCP, one connection per server per round. Over UDP, every query to a server that is
down makes its host send an ICMP port-unreachable, and the kernel sends those at about
one a second per destination: a guard asking every second used up that budget, so the
mail host's own resolver (Postfix's client lookups, when the host resolves through the
same servers) lost the ICMP that tells it to move to the next server and waited for its
timeout instead. Over TCP a stopped server answers with a reset, which is not rate
limited and fails the round for that server at once.

dnspython is Debian's python3-dnspython on the mail hosts (2.3 on bookworm): only calls
that exist there are used.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from .rules import ServerView


class NoAnswer(Exception):
    """The server gave no authoritative answer."""


def _ask(
    sock: socket.socket, server: str, name: str, rdtype: dns.rdatatype.RdataType, timeout: float
) -> list[str]:
    """The RRset's rdata as text; [] when the name or type does not exist (authoritatively)."""
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    try:
        reply = dns.query.tcp(query, server, timeout=timeout, sock=sock)
    except (dns.exception.DNSException, OSError) as exc:
        raise NoAnswer(f"{type(exc).__name__} {exc}".strip()) from None
    if not reply.flags & dns.flags.AA:
        raise NoAnswer(f"not authoritative for {name}")
    rcode = reply.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return []
    if rcode != dns.rcode.NOERROR:
        raise NoAnswer(f"{dns.rcode.to_text(rcode)} for {name}")
    wanted = dns.name.from_text(name)
    return [
        rdata.to_text()
        for rrset in reply.answer
        if rrset.name == wanted and rrset.rdtype == rdtype
        for rdata in rrset
    ]


def ask_server(
    server: str, mx_names: Sequence[str], client_names: Sequence[str], timeout: float
) -> ServerView:
    try:
        sock = socket.create_connection((server, 53), timeout=timeout)
    except OSError as exc:
        return ServerView(server, error=f"{type(exc).__name__} {exc}".strip())
    try:
        mx: dict[str, tuple[tuple[int, str], ...]] = {}
        for name in mx_names:
            pairs = []
            for text in _ask(sock, server, name, dns.rdatatype.MX, timeout):
                pref, _, exchange = text.partition(" ")
                pairs.append((int(pref), exchange))
            mx[name] = tuple(sorted(pairs))
        addresses: dict[str, frozenset[str]] = {}
        for name in client_names:
            found = _ask(sock, server, name, dns.rdatatype.A, timeout)
            found += _ask(sock, server, name, dns.rdatatype.AAAA, timeout)
            addresses[name] = frozenset(found)
    except NoAnswer as exc:
        return ServerView(server, error=str(exc))
    finally:
        sock.close()
    return ServerView(server, mx, addresses)


def ask_all(
    servers: Sequence[str], mx_names: Sequence[str], client_names: Sequence[str], timeout: float
) -> tuple[ServerView, ...]:
    """Every server at once: a dead server costs one timeout, not one per server."""
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        jobs = [pool.submit(ask_server, s, mx_names, client_names, timeout) for s in servers]
        return tuple(job.result() for job in jobs)
