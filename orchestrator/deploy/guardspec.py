"""The spec fields the host firewall and the self-fence guard need, validated.

- `mail_addresses` (per host): the addresses the host owns and connects from. The peer's
  are the only ones allowed on the replication port; a host's own are what "the client
  names point at me" means to its guard.
- `mail_nameservers` (shared): the authoritative servers of the mail domains, by address.
  The guard asks them directly (no resolver, no cache between it and the truth).
- `mail_guard_interval`, `mail_guard_lease`, `mail_guard_timeout` (shared, defaults in
  GUARD_DEFAULTS below): seconds between rounds, how long an opening holds without a new
  confirmation, and the timeout of one DNS query. Keep the lease shorter than the
  controller's detection window (failure_threshold x interval): a host frozen for longer
  than its lease is closed when it thaws.
- `mail_guard_propagation` (shared, default 60 s): how long the authoritative servers may
  disagree during a move (one serves the new records, another still the old) while the
  host they are moving away from keeps its lease. Set it to the DNS provider's
  propagation bound (Route 53 documents 60 s); past it the old primary closes until the
  servers agree.

The owned names come from fields the pair already has: the MX of every `mail_domains`
entry and `mail_client_name` (A/AAAA).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.config.fields import Reader

GUARD_FIELDS = (
    "mail_nameservers",
    "mail_guard_interval",
    "mail_guard_lease",
    "mail_guard_timeout",
    "mail_guard_propagation",
)


# 1 s rounds; an opening holds 3 s without a new confirmation (shorter than the lab's
# detection window of 3 x 1 s); one DNS query may take 0.5 s.
GUARD_DEFAULTS: dict[str, float] = {
    "mail_guard_interval": 1.0,
    "mail_guard_lease": 3.0,
    "mail_guard_timeout": 0.5,
    "mail_guard_propagation": 60.0,
}


@dataclass(frozen=True)
class GuardSpec:
    nameservers: tuple[str, ...]
    interval: float
    lease: float
    timeout: float
    propagation: float = GUARD_DEFAULTS["mail_guard_propagation"]


def read_addresses(value: object, field: str, problems: Reader) -> tuple[str, ...]:
    """A non-empty list of IP addresses, in their canonical text form."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        problems.problem(field, 'required: a list of IP addresses, e.g. ["192.0.2.25"]')
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            address = str(ipaddress.ip_address(str(item).strip()))
        except ValueError:
            problems.problem(f"{field}[{i}]", f"{item!r} is not an IP address")
            continue
        if address in out:
            problems.problem(f"{field}[{i}]", f"{address} is listed twice")
        else:
            out.append(address)
    return tuple(out)


def _read_seconds(value: object, field: str, low: float, high: float, problems: Reader) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.problem(field, f"must be a number of seconds between {low:g} and {high:g}")
        return low
    if not low <= value <= high:
        problems.problem(field, f"{value:g} is out of range: between {low:g} and {high:g} seconds")
        return low
    return float(value)


def _setting(shared: Mapping[str, Any], key: str) -> object:
    value = shared.get(key)
    return GUARD_DEFAULTS[key] if value is None else value


def read_guard(shared: Mapping[str, Any], problems: Reader) -> GuardSpec:
    servers = shared.get("mail_nameservers")
    nameservers = read_addresses(servers, "mail_nameservers", problems) if servers else ()
    if not servers:
        problems.problem(
            "mail_nameservers",
            "required: the addresses of the authoritative nameservers of the mail domains "
            "(each host's guard asks them where the MX and the client name point)",
        )
    interval = _read_seconds(
        _setting(shared, "mail_guard_interval"), "mail_guard_interval", 0.2, 60, problems
    )
    lease = _read_seconds(
        _setting(shared, "mail_guard_lease"), "mail_guard_lease", 1, 300, problems
    )
    timeout = _read_seconds(
        _setting(shared, "mail_guard_timeout"), "mail_guard_timeout", 0.05, 10, problems
    )
    propagation = _read_seconds(
        _setting(shared, "mail_guard_propagation"), "mail_guard_propagation", 0, 3600, problems
    )
    if lease < interval + 2 * timeout:
        problems.problem(
            "mail_guard_lease",
            f"{lease:g} s must exceed mail_guard_interval + 2 x mail_guard_timeout "
            f"({interval + 2 * timeout:g} s): a healthy host would lapse between rounds",
        )
    return GuardSpec(nameservers, interval, lease, timeout, propagation)


def check_disjoint(addresses: Mapping[str, tuple[str, ...]], problems: Reader) -> None:
    """Two hosts claiming one address would each believe DNS points at them."""
    (a, mine), (b, theirs) = addresses.items()
    shared = sorted(set(mine) & set(theirs))
    if shared:
        problems.problem(
            "mail_addresses", f"{', '.join(shared)} listed for both {a} and {b}: each host its own"
        )
