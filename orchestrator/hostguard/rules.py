"""The guard's decision: which client ports this mail host may keep open, given what the
authoritative nameservers say now. A pure function, tested with tables.

Roles, from the owned names (the MX of every mail domain, the client-facing A/AAAA names):

- primary: every answering server names this host, either as the address of every
  client-facing name or as a lowest-preference MX. Port 25 is open when ANY owned MX
  (whatever its preference) names the host, so a standby published as backup MX fits the
  same rule; the client ports are open when the client names point here.
- standby: no server names this host as primary, and it either never was primary or saw
  the names move away live (a planned handover such as a switchback). Its ports stay
  open: the controller and the witnesses judge whether the standby can be promoted by
  probing its SMTP and IMAPS.
- demoted: it was primary, and finds the names pointing elsewhere after a gap longer than
  its lease (it was frozen, rebooted, cut off): a failover happened behind its back. It
  fences itself (the controller's fence marker and table) and stays closed until a
  switchback unfences it.

An opening is a lease: it holds `hold` seconds from when the round's queries started and
the kernel closes the ports after that unless a later round renews it. Only a
confirmation renews a primary's lease (as Patroni's failsafe mode lets a primary that lost
its DCS serve only while it is confirmed):

- every answering server names this host: a full lease;
- no server answers: no renewal. The ports stay open only for what is left of the lease of
  the last confirmation, then close: a primary cut off from every authoritative server is
  closed one lease after its last confirmation, which is what a controller that cannot
  fence it waits out before it promotes the standby. A host whose own link is down closes
  at once: no client can reach it then anyway, and a restored link must start closed;
- the servers disagree (some name this host, some another): a move away from this host is
  propagating. While the host keeps hearing the servers, one of them naming it in every
  lease (it is not cut off: each round is evidence it was there all along), and the
  disagreement is younger than `propagation` (the provider's propagation bound), the lease
  is renewed: slow propagation during a planned move must not refuse the clients that the
  lagging server still sends here. A disagreement that outlasts the bound, or that this
  host did not hear continuously, renews nothing.

A planned handover and a failover behind this host's back both end with the names
elsewhere; what tells them apart is whether this host kept hearing the servers until
then. `named_at` is the last round in which a server named this host primary, counted
only while no lease passed without such a round since the last confirmation: when the
names agree on another host within a lease of it, the move happened live (a switchback
whose rewrite reached one server seconds after the other) and the host becomes a standby.
A host that was frozen, down or cut off has no such chain, and demotes itself.

A standby's open ports are not a claim to be primary (the names point elsewhere; only
the backup MX and the probes reach it), so it keeps them when no server answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    # When a server last named this host primary, heard without a lease's gap since the
    # last confirmation (this process; see the module docstring).
    named_at: float | None = None
    propagation: float = 60.0  # how long servers may disagree and the lease still renews


@dataclass(frozen=True)
class Decision:
    role: Role
    open: frozenset[PortGroup]  # leased from `started_at` for `hold` seconds
    confirmed_at: float | None
    self_fence: bool
    reason: str
    hold: float = 0.0  # seconds the opening holds from the round's start (0 when closed)
    named_at: float | None = None


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


def _decision(
    s: Situation,
    role: Role,
    open_: frozenset[PortGroup],
    reason: str,
    hold: float | None = None,
    confirmed_at: float | None = None,
    named_at: float | None = None,
    self_fence: bool = False,
) -> Decision:
    """A full lease unless `hold` says less; nothing held when closed."""
    hold = s.lease if hold is None else hold
    if not open_ or hold <= 0:
        open_, hold = CLOSED, 0.0
    return Decision(role, open_, confirmed_at, self_fence, reason, hold, named_at)


def _state(open_: frozenset[PortGroup]) -> str:
    return f"keeping {_names(open_)} open" if open_ else "staying closed"


def _left(s: Situation) -> float:
    """What is left of the lease of this host's last confirmation as primary."""
    return 0.0 if s.confirmed_at is None else s.confirmed_at + s.lease - s.started_at


def _unconfirmed(s: Situation, why: str) -> Decision:
    """No confirmation this round: a primary's lease runs out, a standby keeps its ports."""
    if s.role is not Role.PRIMARY:
        return _decision(s, s.role, s.open_now, f"{why}: {_state(s.open_now)}",
                         confirmed_at=s.confirmed_at, named_at=s.named_at)  # fmt: skip
    left = _left(s)
    state = (
        f"keeping {_names(s.open_now)} open for the {left:.1f} s left of the last "
        "confirmation's lease, not renewed"
        if s.open_now and left > 0
        else "closed until the servers confirm this host again"
    )
    return _decision(s, s.role, s.open_now, f"{why}: {state}", left, s.confirmed_at, s.named_at)


def _disagreement(s: Situation, evidence: str) -> Decision:
    why = f"authoritative servers disagree ({evidence})"
    if s.role is not Role.PRIMARY:
        return _unconfirmed(s, why)
    last = max((t for t in (s.confirmed_at, s.named_at) if t is not None), default=None)
    if last is None or s.started_at - last > s.lease:
        # Not heard through: frozen, down or cut off since; a chain once broken stays so.
        return _unconfirmed(s, why)
    since = s.started_at - (s.confirmed_at if s.confirmed_at is not None else last)
    if since > s.propagation:
        return replace(
            _unconfirmed(s, f"{why}; for {since:.1f} s, longer than the {s.propagation:g} s "
                         "propagation allows"),
            named_at=s.started_at,
        )  # fmt: skip
    return _decision(
        s,
        s.role,
        s.open_now,
        f"{why}; heard all along, {since:.1f} s into the move (propagation allows "
        f"{s.propagation:g} s): {_state(s.open_now)}, lease renewed",
        confirmed_at=s.confirmed_at,
        named_at=s.started_at,
    )


def _moved_away(s: Situation, evidence: str) -> Decision:
    """This host was primary and every answering server names another one now."""
    closed_by_fence = " (fenced: the fence table keeps it closed)" if s.fenced else ""
    ports = CLOSED if s.fenced else ALL_OPEN
    gap = None if s.confirmed_at is None else s.started_at - s.confirmed_at
    if gap is not None and gap <= s.lease:
        return _decision(
            s,
            Role.STANDBY,
            ports,
            f"standby: the names moved away {gap:.1f} s after this host was last "
            f"confirmed primary (a live handover){closed_by_fence} ({evidence})",
            confirmed_at=s.confirmed_at,
        )
    heard = None if s.named_at is None else s.started_at - s.named_at
    if gap is not None and heard is not None and heard <= s.lease:
        return _decision(
            s,
            Role.STANDBY,
            ports,
            f"standby: the names moved away {gap:.1f} s after this host was last confirmed "
            f"primary, and a server still named it {heard:.1f} s ago: it heard the servers "
            f"all along (a live handover that propagated slowly){closed_by_fence} ({evidence})",
            confirmed_at=s.confirmed_at,
        )
    since = "never confirmed by this process" if gap is None else f"last {gap:.1f} s ago"
    return _decision(
        s,
        Role.DEMOTED,
        CLOSED,
        f"demoted: this host was primary ({since}, lease {s.lease:g} s) and the names now "
        f"point elsewhere: a failover happened while it was away; self-fenced, closed "
        f"({evidence})",
        confirmed_at=s.confirmed_at,
        self_fence=not s.fenced,
    )


def decide(s: Situation) -> Decision:
    answering = [v for v in s.views if v.error is None]
    if not answering:
        errors = "; ".join(f"{v.server}: {v.error}" for v in s.views) or "none configured"
        if not s.link_up:
            return _decision(
                s,
                s.role,
                CLOSED,
                f"own link down (no carrier on {', '.join(sorted(s.me.addresses))}): closed, "
                "no client can reach this host now and a restored link must start closed",
                confirmed_at=s.confirmed_at,
                named_at=s.named_at,
            )
        return _unconfirmed(s, f"no authoritative server answered ({errors})")
    claims = [claim(v, s.me) for v in answering]
    evidence = f"{answering[0].server} says {describe(answering[0])}"
    if len(answering) > 1 and len({describe(v) for v in answering}) > 1:
        evidence = "; ".join(f"{v.server} says {describe(v)}" for v in answering)
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
            return _decision(
                s,
                Role.PRIMARY,
                CLOSED,
                f"DNS names this host primary but it is fenced: closed until unfenced ({evidence})",
                confirmed_at=s.started_at,
                named_at=s.started_at,
            )
        return _decision(s, Role.PRIMARY, ports, f"primary: open {_names(ports)} ({evidence})",
                         confirmed_at=s.started_at, named_at=s.started_at)  # fmt: skip
    if primary_votes:
        return _disagreement(s, evidence)
    if s.role is Role.PRIMARY:
        return _moved_away(s, evidence)
    if s.fenced:
        role = Role.DEMOTED if s.role is Role.DEMOTED else Role.STANDBY
        return _decision(s, role, CLOSED, f"fenced: closed ({evidence})",
                         confirmed_at=s.confirmed_at)  # fmt: skip
    return _decision(s, Role.STANDBY, ALL_OPEN, f"standby: open for probes ({evidence})",
                     confirmed_at=s.confirmed_at)  # fmt: skip


def lease_deadline(started_wall: float, lease: float) -> int:
    """The wall-clock second until which an opening holds (nftables' `meta time` counts
    whole seconds): rounded down, so a lease is never longer than asked."""
    return int(started_wall + lease)
