"""`mxctl switchover|switchback|maintenance run`: planned moves for maintenance windows."""

from __future__ import annotations

import argparse
import getpass
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.cli.fence_cmd import print_fence_notes
from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.cluster.leadership import ClusterKeys
from orchestrator.cluster.member import ClusterMember
from orchestrator.cluster.requests import ClusterRequests
from orchestrator.config.loader import MxctlConfig, load_config
from orchestrator.controller import switching
from orchestrator.controller.intents import intent_problem
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller
from orchestrator.controller.model import ControllerState
from orchestrator.controller.planned import PlannedMove, PlannedSteps, move_for
from orchestrator.dns.plan import build_plan
from orchestrator.errors import MxctlError, UsageError

REQUIRED = ("dns", "pair", "ssh", "probes")
WAIT_FOR_LOOP = 3600.0


def register(subparsers: Any) -> None:
    so = subparsers.add_parser("switchover", help="planned move of mail to the other host")
    so.add_argument("--to", required=True, help="the host to move mail to (mx2 or its FQDN)")
    so.add_argument("--at", help="when: ISO time or HH:MM (UTC); default now")
    so.add_argument("--dry-run", action="store_true", help="show the steps and DNS plan only")
    so.add_argument("--allow-data-loss", action="store_true",
                    help="go ahead even when mailboxes differ")  # fmt: skip
    so.add_argument("--config", type=Path)
    so.set_defaults(func=cmd_switchover)
    sb = subparsers.add_parser("switchback", help="resync, then move mail back to the home primary")
    sb.add_argument("--dry-run", action="store_true")
    sb.add_argument("--allow-data-loss", action="store_true")
    sb.add_argument("--config", type=Path)
    sb.set_defaults(func=cmd_switchback)
    mt = subparsers.add_parser("maintenance", help="maintenance on one host")
    mt_sub = mt.add_subparsers(dest="maintenance_command", required=True)
    run = mt_sub.add_parser("run", help="switch away from HOST, run CMD, switch back")
    run.add_argument("--host", required=True)
    run.add_argument("--config", type=Path)
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    run.set_defaults(func=cmd_maintenance_run)


def _fqdn(config: MxctlConfig, name: str) -> str:
    pair = (config.pair.primary, config.pair.standby)
    for host in pair:
        if name.rstrip(".").lower() in (host, host.split(".")[0]):
            return host
    raise UsageError(f"--to/--host {name!r} is not in the pair ({', '.join(pair)})")


def _when(text: str | None) -> datetime:
    now = SYSTEM_CLOCK.now()
    if not text:
        return now
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            return now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r}: use an ISO time (2026-11-28T03:00Z) or HH:MM") from None
    return at if at.tzinfo else at.replace(tzinfo=now.tzinfo)


def dry_run(config: MxctlConfig, planned: PlannedMove) -> int:
    journal = Journal(config.pair.state_dir / "journal.db")
    state = Controller(config, journal).load_state()
    move = move_for(planned, state)
    steps = PlannedSteps(config, SYSTEM_CLOCK, journal, "dry-run")
    try:
        print(f"{planned.kind}: {move.old_primary} -> {move.new_primary} (dry run: no change)")
        for i, step in enumerate(steps.planned_steps(planned, move), 1):
            print(f"  {i:2}. {step.name}: {step.why}")
        print(build_plan(config.dns, steps.provider(), move.new_primary).describe())
    finally:
        steps.close()
    return 0


def run_planned(config: MxctlConfig, planned: PlannedMove, at: datetime) -> bool:
    """Carry the move out here, or hand it to the running loop and wait; True when done."""
    journal = Journal(config.pair.state_dir / "journal.db")
    if config.cluster is not None:
        return hand_to_cluster(config, journal, planned, at)
    who = getpass.getuser()
    expiry = config.maintenance.intent_expiry
    try:
        with switching.controller_lock(config.pair.state_dir):
            controller = Controller(config, journal)
            # Checked against the state as it is now (a failover may have moved mail).
            intent_problem_now(planned, controller.load_state())
            delay = (at - SYSTEM_CLOCK.now()).total_seconds()
            if delay > 0:
                print(f"waiting {delay:.0f} s until {at.isoformat()}")
                SYSTEM_CLOCK.sleep(delay)
            state = controller.load_state()
            intent_id = switching.request(journal, planned, at, who, SYSTEM_CLOCK.now(), state,
                                          expiry)  # fmt: skip
            result, _ = switching.execute(
                config, journal, SYSTEM_CLOCK, planned, state, controller.save_state, intent_id
            )
            _report(journal, result.run_id)
            return result.status == "done"
    except switching.ControllerBusy:
        state = Controller(config, journal).load_state()
        intent_id = switching.request(journal, planned, at, who, SYSTEM_CLOCK.now(), state, expiry)
        print("the running controller carries this out when it is due; waiting "
              "(`mxctl cancel` withdraws it)")  # fmt: skip
    start = SYSTEM_CLOCK.monotonic()
    while SYSTEM_CLOCK.monotonic() - start < WAIT_FOR_LOOP + max(
        0.0, (at - SYSTEM_CLOCK.now()).total_seconds()
    ):
        SYSTEM_CLOCK.sleep(1.0)
        ended = switching.result(journal, intent_id)
        if ended is None:
            continue
        runs = [r for r in journal.runs() if r.kind == planned.kind]
        if ended["status"] in ("done", "aborted") and runs:
            _report(journal, runs[-1].run_id)
        print(f"{ended['status']}: {ended['reason']}")
        return ended["status"] == "done"
    raise MxctlError("the controller did not finish the move in time: see `mxctl history`")


def hand_to_cluster(
    config: MxctlConfig, journal: Journal, planned: PlannedMove, at: datetime
) -> bool:
    """With `[cluster]` only the leader acts, wherever it runs: never carry the move out
    here; put the intent in the cluster's store and wait for the leader's outcome."""
    assert config.cluster is not None
    who, expiry = getpass.getuser(), config.maintenance.intent_expiry
    member = ClusterMember(config.cluster, journal)
    try:
        # Judged against the cluster's state (the leader's), not this host's copy.
        state = member.load_state(Controller(config, journal).load_state())
        intent_problem_now(planned, state)
        store = ClusterRequests(member.client, ClusterKeys(config.cluster.name), journal)
        intent_id = switching.request(store, planned, at, who, SYSTEM_CLOCK.now(), state, expiry)
        print(f"handed to the controller cluster {config.cluster.name}: its leader carries "
              "this out when it is due; waiting (`mxctl cancel` withdraws it)")  # fmt: skip
        start = SYSTEM_CLOCK.monotonic()
        wait = WAIT_FOR_LOOP + max(0.0, (at - SYSTEM_CLOCK.now()).total_seconds())
        while SYSTEM_CLOCK.monotonic() - start < wait:
            SYSTEM_CLOCK.sleep(1.0)
            ended = switching.result(store, intent_id)
            if ended is not None:
                print(f"{ended['status']}: {ended['reason']} (the leader's `mxctl history` "
                      "has its steps)")  # fmt: skip
                return ended["status"] == "done"
    finally:
        member.close()
    raise MxctlError("the cluster's leader did not finish the move in time: see `mxctl status`")


def intent_problem_now(planned: PlannedMove, state: ControllerState) -> None:
    problem = intent_problem(planned.kind, planned.to, state)
    if problem is not None:
        raise UsageError(f"{planned.kind} to {planned.to}: {problem}")


def _report(journal: Journal, run_id: str) -> None:
    for event in journal.events(limit=200, run_id=run_id):
        if event.kind == "step" and event.status != "started":
            print(f"  {event.subject:18} {event.status:7} {event.reason}")


def cmd_switchover(args: argparse.Namespace) -> int:
    config = load_config(args.config, required=REQUIRED)
    planned = PlannedMove("switchover", _fqdn(config, args.to), args.allow_data_loss)
    if args.dry_run:
        return dry_run(config, planned)
    return 0 if run_planned(config, planned, _when(args.at)) else 1


def cmd_switchback(args: argparse.Namespace) -> int:
    config = load_config(args.config, required=REQUIRED)
    planned = PlannedMove("switchback", config.pair.primary, args.allow_data_loss)
    if args.dry_run:
        return dry_run(config, planned)
    done = run_planned(config, planned, SYSTEM_CLOCK.now())
    # A host whose guard fenced it (it found the names moved while it was away) refuses
    # every client while DNS may still list it: say so, and how to lift it.
    print_fence_notes(config)
    return 0 if done else 1


def cmd_maintenance_run(args: argparse.Namespace) -> int:
    """All or nothing: no command runs unless mail moved away first; mail moves back after,
    and the report says which steps happened."""
    config = load_config(args.config, required=REQUIRED)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("give the command after `--`: mxctl maintenance run --host mx1 -- CMD")
    host = _fqdn(config, args.host)
    other = config.pair.standby if host == config.pair.primary else config.pair.primary
    state = Controller(config, Journal(config.pair.state_dir / "journal.db")).load_state()
    if state.primary != host:
        raise UsageError(
            f"--host {host} is not the primary now ({state.primary} is): mail is already "
            f"away from it; run the command on it directly, or switch back first"
        )
    report: dict[str, Any] = {"host": host, "command": cmd}
    if not run_planned(config, PlannedMove("switchover", other), SYSTEM_CLOCK.now()):
        report["result"] = "switchover failed: the command was not run"
        print(json.dumps(report, indent=2))
        return 1
    proc = subprocess.run(cmd, check=False, env=None)
    report["command_exit"] = proc.returncode
    back = run_planned(config, PlannedMove("switchback", host), SYSTEM_CLOCK.now())
    report["result"] = (
        "done"
        if back and proc.returncode == 0
        else (
            "command failed; mail moved back"
            if back
            else f"switchback failed: mail stays on {other}"
        )
    )
    print(json.dumps(report, indent=2))
    return 0 if report["result"] == "done" else 1
