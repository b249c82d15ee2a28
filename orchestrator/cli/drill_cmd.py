"""`mxctl drill`: a failover drill — a planned switchover to the standby and a switchback,
through the maintenance machinery (same steps, same intent handling as `mxctl switchover`),
with mail flowing through the MX, measured, journaled and exported."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from orchestrator.cli.maintenance_cmd import REQUIRED, _when, run_planned
from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import load_config
from orchestrator.controller.journal import Journal
from orchestrator.controller.planned import PlannedMove
from orchestrator.drills import record
from orchestrator.drills.mailflow import MailFlow, delivered_tokens
from orchestrator.drills.verdict import phase_seconds, verdict
from orchestrator.errors import MxctlError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("drill", help="failover drill: switchover + switchback, measured")
    p.add_argument("--at", help="when: ISO time or HH:MM (UTC); default now")
    p.add_argument("--every", type=float, default=0.5, help="seconds between drill messages")
    p.add_argument(
        "--max-not-accepted",
        type=float,
        default=5.0,
        help="seconds without acceptance that fail the drill",
    )
    p.add_argument("--config", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drill)


def cmd_drill(args: argparse.Namespace) -> int:
    config = load_config(args.config, required=REQUIRED)
    home, standby = config.pair.primary, config.pair.standby
    at = _when(args.at)
    delay = (at - SYSTEM_CLOCK.now()).total_seconds()
    if delay > 0:
        print(f"waiting {delay:.0f} s until {at.isoformat()}")
        SYSTEM_CLOCK.sleep(delay)
    started_at = SYSTEM_CLOCK.now()
    flow = MailFlow(config, every=args.every)
    flow.start()
    moves: dict[str, tuple[bool, float | None]] = {}
    try:
        time.sleep(2 * args.every)  # mail flows before the first move
        for planned in (PlannedMove("switchover", standby), PlannedMove("switchback", home)):
            t0 = time.monotonic()
            done = run_planned(config, planned, SYSTEM_CLOCK.now())
            moves[planned.kind] = (done, round(time.monotonic() - t0, 2))
            if not done:
                break
        time.sleep(2 * args.every)
    finally:
        flow.stop.set()
        flow.join(60)
    address = config.dns.mail_host(home)
    if address is None:
        raise MxctlError(f"{home} is not in dns.mail_hosts")
    tokens = [a.token for a in flow.attempts if a.accepted]
    delivered: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the last ones may still be in a queue
        delivered |= delivered_tokens(config, address[1][0], tokens)
        if delivered >= set(tokens):
            break
        time.sleep(2)
    journal = Journal(config.pair.state_dir / "journal.db")
    try:
        runs = {r.kind: r.run_id for r in journal.runs()}
        events = journal.events(limit=1000)
        convergence = sum(
            phase_seconds(events, runs[k], step)
            for k in moves
            if k in runs
            for step in ("converge", "converge-after")  # before the switch, and after it
        )
        result = verdict(
            started_at.isoformat(),
            moves,
            convergence,
            flow.attempts,
            delivered,
            args.max_not_accepted,
        )
        record.record(config, journal, result, SYSTEM_CLOCK)
    finally:
        journal.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"failover drill {result.result.upper()}: {result.why}")
        print(
            f"  switchover {result.switchover_s} s, switchback {result.switchback_s} s, "
            f"convergence {result.convergence_s} s, mail not accepted {result.not_accepted_s}"
            f" s, {result.messages_accepted}/{result.messages_sent} accepted, "
            f"{result.messages_lost} lost"
        )
    return 0 if result.result == "passed" else 1
