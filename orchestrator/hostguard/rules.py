"""The guard's decision: which client ports this mail host may keep open, given what the
authoritative nameservers say now. A pure function, tested with tables.

Roles, from the owned names (the MX of every mail domain, the client-facing A/AAAA names):

- primary: every answering server names this host, either as the address of every
  client-facing name or as a lowest-preference MX. Port 25 is open when ANY owned MX
  (whatever its preference) names the host, so a standby published as backup MX (issue
  12) fits the same rule; the client ports are open when the client names point here.
- standby: no server names this host as primary, and it either never was primary or saw
  the names move away while its lease was still valid (a live, planned handover such as a
  switchback). Its ports stay open: the controller and the witnesses judge whether the
  standby can be promoted by probing its SMTP and IMAPS.
- demoted: it was primary, and finds the names pointing elsewhere after a gap longer than
  its lease (it was frozen, rebooted, cut off): a failover happened behind its back. It
  fences itself (the controller's fence marker and table) and stays closed until a
  switchback unfences it.

A host that hears from no authoritative server keeps its current state, except that a
lease that lapsed meanwhile stays lapsed (closed), and that a host whose own link is down
closes: no client can reach it then anyway, and a restored link must start closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class PortGroup(StrEnum):
    SMTP = "smtp"
    CLIENTS = "clients"


PORTS: Mapping[PortGroup, tuple[int, ...]] = {
    PortGroup.SMTP: (25,),
    PortGroup.CLIENTS: (465, 587, 110, 143, 993, 995),
}
ALL_OPEN = frozenset(PortGroup)
CLOSED: frozenset[PortGroup] = frozenset()


class Role(StrEnum):
    UNKNOWN = "unknown"  # never decided (first start, no answer yet)
    PRIMARY = "primary"
    STANDBY = "standby"
    DEMOTED = "demoted"


@dataclass(frozen=True)
class ServerView:
    """One authoritative server's answers for the owned names (error: no usable answer)."""

    server: str
    mx: Mapping[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Identity:
    fqdn: str
    addresses: frozenset[str]


@dataclass(frozen=True)
class Situation:
    """Everything one decision needs; times are seconds on one monotonic clock."""

    views: tuple[ServerView, ...]
    me: Identity
    role: Role  # remembered across restarts
    confirmed_at: float | None  # when servers last named this host primary (this process)
    fenced: bool  # the fence marker is present
    link_up: bool  # an interface holding one of my addresses has carrier
    open_now: frozenset[PortGroup]  # what the kernel lets through right now (lease valid)
    started_at: float  # when this round's queries started
    lease: float


@dataclass(frozen=True)
class Decision:
    role: Role
    open: frozenset[PortGroup]  # leased from `started_at` for `lease` seconds
    confirmed_at: float | None
    self_fence: bool
    reason: str


@dataclass(frozen=True)
class Claim:
    """What one server's answers say about this host."""

    primary: bool
    smtp: bool
    clients: bool


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def claim(view: ServerView, me: Identity) -> Claim:
    mine = any(_same_name(ex, me.fqdn) for rrs in view.mx.values() for _, ex in rrs)
    lowest_mine = False
    for rrs in view.mx.values():
        if rrs:
            best = min(pref for pref, _ in rrs)
            lowest_mine |= any(_same_name(ex, me.fqdn) for pref, ex in rrs if pref == best)
    clients = bool(view.addresses) and all(
        addrs and addrs <= me.addresses for addrs in view.addresses.values()
    )
    return Claim(primary=clients or lowest_mine, smtp=mine, clients=clients)


def describe(view: ServerView) -> str:
    """`MX example.test -> mx2.example.test; mail.example.test -> 10.0.0.2` (for the log)."""
    parts = [
        f"MX {name} -> {', '.join(ex.rstrip('.') for _, ex in sorted(rrs)) or 'none'}"
        for name, rrs in sorted(view.mx.items())
    ]
    parts += [
        f"{name} -> {', '.join(sorted(addrs)) or 'none'}"
        for name, addrs in sorted(view.addresses.items())
    ]
    return "; ".join(parts)


def _names(groups: frozenset[PortGroup]) -> str:
    return ", ".join(sorted(groups)) or "none"


def _keep(s: Situation, why: str) -> Decision:
    state = f"keeping {_names(s.open_now)} open" if s.open_now else "staying closed"
    return Decision(s.role, s.open_now, s.confirmed_at, False, f"{why}: {state}")


def decide(s: Situation) -> Decision:
    answering = [v for v in s.views if v.error is None]
    if not answering:
        errors = "; ".join(f"{v.server}: {v.error}" for v in s.views) or "none configured"
        if not s.link_up:
            return Decision(
                s.role,
                CLOSED,
                s.confirmed_at,
                False,
                f"own link down (no carrier on {', '.join(sorted(s.me.addresses))}): closed, "
                "no client can reach this host now and a restored link must start closed",
            )
        return _keep(s, f"no authoritative server answered ({errors})")
    claims = [claim(v, s.me) for v in answering]
    evidence = f"{answering[0].server} says {describe(answering[0])}"
    if len(answering) > 1 and len({describe(v) for v in answering}) > 1:
        evidence = "; ".join(f"{v.server} says {describe(v)}" for v in answering)
    closed_by_fence = " (fenced: the fence table keeps it closed)" if s.fenced else ""
    primary_votes = sum(c.primary for c in claims)
    if primary_votes == len(claims):
        ports = frozenset(
            group
            for group, wanted in (
                (PortGroup.SMTP, all(c.smtp for c in claims)),
                (PortGroup.CLIENTS, all(c.clients for c in claims)),
            )
            if wanted
        )
        if s.fenced:
            return Decision(
                Role.PRIMARY,
                CLOSED,
                s.started_at,
                False,
                f"DNS names this host primary but it is fenced: closed until unfenced ({evidence})",
            )
        return Decision(
            Role.PRIMARY, ports, s.started_at, False, f"primary: open {_names(ports)} ({evidence})"
        )
    if primary_votes:
        return _keep(s, f"authoritative servers disagree ({evidence})")
    if s.role is Role.PRIMARY:
        gap = None if s.confirmed_at is None else s.started_at - s.confirmed_at
        if gap is not None and gap <= s.lease:
            return Decision(
                Role.STANDBY,
                CLOSED if s.fenced else ALL_OPEN,
                s.confirmed_at,
                False,
                f"standby: the names moved away {gap:.1f} s after this host was last "
                f"confirmed primary (a live handover){closed_by_fence} ({evidence})",
            )
        since = "never confirmed by this process" if gap is None else f"last {gap:.1f} s ago"
        return Decision(
            Role.DEMOTED,
            CLOSED,
            s.confirmed_at,
            not s.fenced,
            f"demoted: this host was primary ({since}, lease {s.lease:g} s) and the names now "
            f"point elsewhere: a failover happened while it was away; self-fenced, closed "
            f"({evidence})",
        )
    if s.fenced:
        role = Role.DEMOTED if s.role is Role.DEMOTED else Role.STANDBY
        return Decision(role, CLOSED, s.confirmed_at, False, f"fenced: closed ({evidence})")
    return Decision(
        Role.STANDBY, ALL_OPEN, s.confirmed_at, False, f"standby: open for probes ({evidence})"
    )


def lease_deadline(started_wall: float, lease: float) -> int:
    """The wall-clock second until which an opening holds (nftables' `meta time` counts
    whole seconds): rounded down, so a lease is never longer than asked."""
    return int(started_wall + lease)
