"""The guard's settings: /etc/mxctl/guard.json, rendered by the deploy from the spec.

The deploy validated the spec already; this checks again on the host (a hand-edited file
must fail loudly, naming the field, rather than guard nothing).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/mxctl/guard.json")


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class GuardSettings:
    fqdn: str  # this host's name, as MX records name it
    addresses: tuple[str, ...]  # this host's addresses, as A/AAAA records hold them
    nameservers: tuple[str, ...]  # addresses of the authoritative servers, asked directly
    mx_names: tuple[str, ...]  # owned MX names (the mail domains)
    client_names: tuple[str, ...]  # owned client-facing names (A/AAAA)
    interval: float  # seconds between rounds
    lease: float  # seconds an opening holds without a new confirmation
    propagation: float  # seconds the servers may disagree while a primary's lease renews
    timeout: float  # seconds per DNS query
    fence_marker: str  # the controller's fence marker (/etc/mxctl/fenced)
    fence_rules: str  # nft file that fences (/etc/mxctl/fence.nft)
    fence_unit: str  # the unit that keeps the fence across a reboot
    role_file: str  # remembered role (survives a reboot)
    status_file: str  # the last decision, for humans and tests
    table: str  # the guard's own nftables table


def _strings(
    raw: dict[str, Any], key: str, problems: list[str], ips: bool = False
) -> tuple[str, ...]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"{key}: required, a non-empty list of strings")
        return ()
    if ips:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                problems.append(f"{key}: {item!r} is not an IP address")
    return tuple(value)


def _number(raw: dict[str, Any], key: str, low: float, high: float, problems: list[str]) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.append(f"{key}: {value!r} must be a number between {low:g} and {high:g}")
        return low
    return float(value)


def _string(raw: dict[str, Any], key: str, problems: list[str]) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        problems.append(f"{key}: required, a non-empty string")
        return ""
    return value


def parse_settings(raw: object) -> GuardSettings:
    if not isinstance(raw, dict):
        raise SettingsError(["guard settings: must be a JSON object"])
    problems: list[str] = []
    settings = GuardSettings(
        fqdn=_string(raw, "fqdn", problems),
        addresses=_strings(raw, "addresses", problems, ips=True),
        nameservers=_strings(raw, "nameservers", problems, ips=True),
        mx_names=_strings(raw, "mx_names", problems),
        client_names=_strings(raw, "client_names", problems),
        interval=_number(raw, "interval", 0.2, 60, problems),
        lease=_number(raw, "lease", 1, 300, problems),
        # Optional: a guard.json written before the field existed keeps its meaning.
        propagation=_number({"propagation": 60, **raw}, "propagation", 0, 3600, problems),
        timeout=_number(raw, "timeout", 0.05, 10, problems),
        fence_marker=_string(raw, "fence_marker", problems),
        fence_rules=_string(raw, "fence_rules", problems),
        fence_unit=_string(raw, "fence_unit", problems),
        role_file=_string(raw, "role_file", problems),
        status_file=_string(raw, "status_file", problems),
        table=_string(raw, "table", problems),
    )
    if not problems and settings.lease < settings.interval + 2 * settings.timeout:
        problems.append(
            f"lease: {settings.lease:g} s must exceed interval + 2 x timeout "
            f"({settings.interval + 2 * settings.timeout:g} s), or a healthy host's lease lapses"
        )
    if problems:
        raise SettingsError(problems)
    return settings


def load_settings(path: Path = DEFAULT_PATH) -> GuardSettings:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError([f"{path}: missing (the mail deploy writes it)"]) from None
    except ValueError as exc:
        raise SettingsError([f"{path}: not JSON ({exc})"]) from None
    return parse_settings(raw)
