"""Enough SPF (RFC 7208) to answer one question: does a domain's policy let this address
send? Mechanisms ip4, a, mx, include and the redirect modifier are followed; anything else
(ptr, exists, macros) is reported as not evaluated rather than guessed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

MAX_LOOKUPS = 10  # RFC 7208 section 4.6.4

TxtLookup = Callable[[str], Awaitable[list[str]]]
AddressLookup = Callable[[str], Awaitable[list[str]]]
MxLookup = Callable[[str], Awaitable[list[str]]]


class SpfUnsupported(Exception):
    """The policy uses a mechanism this evaluator does not follow."""


def spf_record(texts: list[str]) -> str | None:
    records = [t for t in texts if t.lower().startswith("v=spf1")]
    return records[0] if len(records) == 1 else None


def _in(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


async def authorizes(
    domain: str,
    address: str,
    txt: TxtLookup,
    a: AddressLookup,
    mx: MxLookup,
    _depth: list[int] | None = None,
) -> bool:
    """Whether `domain`'s SPF policy gives `address` a pass (qualifier + or none)."""
    lookups = _depth if _depth is not None else [0]
    record = spf_record(await txt(domain))
    if record is None:
        return False
    redirect: str | None = None
    for term in record.split()[1:]:
        if term.lower().startswith("redirect="):
            redirect = term.split("=", 1)[1]
            continue
        qualifier = term[0] if term[0] in "+-~?" else "+"
        mechanism = term.lstrip("+-~?")
        kind, _, value = mechanism.partition(":")
        kind, _, prefix = kind.partition("/")
        kind = kind.lower()
        matched: bool
        if kind == "all":
            matched = True
        elif kind == "ip4":
            matched = _in(address, value)
        elif kind == "ip6":
            matched = False
        elif kind in ("a", "mx", "include"):
            lookups[0] += 1
            if lookups[0] > MAX_LOOKUPS:
                raise SpfUnsupported(f"more than {MAX_LOOKUPS} DNS lookups in {domain}'s SPF")
            target = value or domain
            cidr = f"/{prefix}" if prefix else ""
            if kind == "a":
                matched = any(_in(address, f"{ip}{cidr}") for ip in await a(target))
            elif kind == "mx":
                matched = False
                for host in await mx(target):
                    matched |= any(_in(address, f"{ip}{cidr}") for ip in await a(host))
            else:
                matched = await authorizes(target, address, txt, a, mx, lookups)
        else:
            raise SpfUnsupported(f"SPF mechanism {kind!r} of {domain} is not evaluated")
        if matched:
            return qualifier == "+"
    if redirect:
        lookups[0] += 1
        return await authorizes(redirect, address, txt, a, mx, lookups)
    return False
