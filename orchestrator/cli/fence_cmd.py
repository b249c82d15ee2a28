"""`mxctl unfence HOST`: lift a fence by hand (journaled), when DNS still sends mail to it.

The usual fenced host is a guard's: after a planned move its guard found the names moved
while it was away (frozen, rebooted, cut off) and closed every client port. Lifting that
needs a human to know the host is current; the command refuses a host DNS names neither
as primary nor as backup MX, and one the controller's fenced set holds (the loop would
fence it again: a switchback or a switchover to it unfences it after a resync).
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import MxctlConfig, load_config
from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState, state_from_json
from orchestrator.controller.unfencing import fence_note, unfence_refusal
from orchestrator.controller.world import read_dns
from orchestrator.dns.factory import make_provider
from orchestrator.errors import MxctlError, UsageError

REQUIRED = ("dns", "pair", "ssh")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "unfence", help="lift a host's fence (its guard's or the controller's), journaled"
    )
    parser.add_argument("host", help="the mail host (mx2 or its FQDN)")
    parser.add_argument("--config", type=Path, help="mxctl.toml (default: $MXCTL_CONFIG)")
    parser.set_defaults(func=cmd_unfence)


def pair_host(config: MxctlConfig, name: str) -> str:
    pair = (config.pair.primary, config.pair.standby)
    for host in pair:
        if name.rstrip(".").lower() in (host, host.split(".")[0]):
            return host
    raise UsageError(f"HOST {name!r} is not in the pair ({', '.join(pair)})")


def _state(config: MxctlConfig, journal: Journal) -> ControllerState:
    raw = journal.get("state")
    if raw:
        return state_from_json(json.loads(raw))
    return ControllerState(config.pair.primary, config.pair.standby)


def cmd_unfence(args: argparse.Namespace) -> int:
    config = load_config(args.config, required=REQUIRED)
    host = pair_host(config, args.host)
    target = ssh_target(config, host)
    marker = fencing.fence_marker(target, config.ssh.timeout)
    if marker is None:
        print(f"{host} is not fenced: nothing to do")
        return 0
    provider = make_provider(config.dns, SYSTEM_CLOCK)
    try:
        dns = read_dns(config, provider, (config.pair.primary, config.pair.standby))
    finally:
        provider.close()
    journal = Journal(config.pair.state_dir / "journal.db")
    try:
        refusal = unfence_refusal(host, dns, _state(config, journal))
        evidence = {"dns": dns.describe(), "marker": marker.strip()}
        who = getpass.getuser()
        if refusal is not None:
            journal.record(SYSTEM_CLOCK.now(), "operator", "unfence", "refused",
                           f"unfence {host} by {who} refused: {refusal}", evidence)  # fmt: skip
            raise UsageError(f"not unfencing {host}: {refusal}")
        fencing.unfence(target, config.ssh.timeout)
        journal.record(SYSTEM_CLOCK.now(), "operator", "unfence", "done",
                       f"{host} unfenced by {who}", evidence)  # fmt: skip
    finally:
        journal.close()
    print(f"{host} unfenced (it was: {marker.strip()}); DNS: {dns.describe()}")
    return 0


def print_fence_notes(config: MxctlConfig) -> None:
    """After a move: a line for each pair host that is fenced, and the way out."""
    for host in (config.pair.primary, config.pair.standby):
        try:
            marker = fencing.fence_marker(ssh_target(config, host), config.ssh.timeout)
        except MxctlError as exc:  # a note never turns a finished move into a failure
            print(f"could not read {host}'s fence ({exc})")
            continue
        note = fence_note(host, marker)
        if note is not None:
            print(note)
