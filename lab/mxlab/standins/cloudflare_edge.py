"""The Cloudflare stand-in's edge served over DNS, as Cloudflare's nameservers serve it.

The stand-in (cloudflare.py) keeps an edge copy of each zone; this answers UDP queries
for it on 127.0.0.1 with the AA flag, so mxctl's verifier can ask "Cloudflare's
nameservers" directly, RD off, as it asks every other provider's. It serves exactly the
records at the edge (MX with priority, TTL 1 as automatic 300 s) and a fixed SOA per zone.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mxlab.standins.cloudflare import CloudflareStandIn
from mxlab.standins.dnsservers import free_port

AUTOMATIC_TTL = 300


class EdgeNameserver:
    def __init__(self, standin: CloudflareStandIn, address: str = "127.0.0.1") -> None:
        self.standin = standin
        self.address = address
        self.port = free_port(address)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, self.port))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> EdgeNameserver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:  # closed by stop()
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            self.sock.sendto(self.answer(query).to_wire(), peer)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        zones = self.standin.zones.values()
        zone = next((z for z in zones if f".{name}".endswith(f".{z.name}")), None)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        rtype = dns.rdatatype.to_text(question.rdtype)
        if rtype == "SOA" and name == zone.name:
            soa = f"ns1.{zone.name}. hostmaster.{zone.name}. 1 60 60 3600 60"
            response.answer.append(_rrset(question.name, "SOA", AUTOMATIC_TTL, [soa]))
            return response
        with self.standin.lock:
            records = [r for r in zone.edge.values() if r["name"] == name and r["type"] == rtype]
        if records:
            ttl = min(_ttl(r) for r in records)
            rdatas = [_rdata(r) for r in records]
            response.answer.append(_rrset(question.name, rtype, ttl, rdatas))
        return response


def _ttl(record: dict[str, Any]) -> int:
    ttl = int(record["ttl"])
    return AUTOMATIC_TTL if ttl == 1 else ttl


def _rdata(record: dict[str, Any]) -> str:
    content = str(record["content"])
    if record["type"] == "MX":
        return f"{int(record['priority'])} {content.rstrip('.')}."
    if record["type"] in ("NS", "CNAME"):
        return content.rstrip(".") + "."
    return content


def _rrset(name: dns.name.Name, rtype: str, ttl: int, rdatas: list[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, ttl, dns.rdataclass.IN, rtype, rdatas)
