"""`mxctl upgrade`: take the running pair to a new Debian release, one host at a time.

mxctl upgrade -i inventories/prod.py --dry-run     # the plan, from the pair as it is now
mxctl upgrade -i inventories/prod.py               # carry it out (Debian 12 -> 13)

Each host in turn: mail moves away from it (planned switchover), apt takes it to the new
release, the deploy writes the new release's configuration (on Debian 13: Dovecot 2.4 and
mxctl-dsync replication), it converges with its peer (the mixed pair replicates), mail
moves back. `--os-upgrade-command` replaces the in-place apt upgrade by a command run
here (`{host}` and `{fqdn}` filled in), e.g. a reinstall from an image.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import MxctlConfig, load_config
from orchestrator.controller import upgrade
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller
from orchestrator.controller.planned import PlannedMove
from orchestrator.controller.runner import Evidence, StepFailed
from orchestrator.controller.upgrade_plan import PairView, UpgradePlan, plan_upgrade
from orchestrator.deploy import runner
from orchestrator.deploy.release import SUPPORTED
from orchestrator.errors import UsageError

REQUIRED = ("dns", "pair", "ssh", "probes")


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "upgrade", help="rolling upgrade of the pair to a new Debian release, one host at a time"
    )
    up.add_argument("-i", "--inventory", required=True, help="the pair's pyinfra inventory")
    up.add_argument("--to", default="trixie", choices=sorted(SUPPORTED), help="target release")
    up.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    up.add_argument("--deploy", default=runner.MAIL_DEPLOY, help="deploy to run on each host")
    up.add_argument("--os-upgrade-command", metavar="CMD",
                    help="run CMD here instead of apt full-upgrade on the host "
                         "({host}, {fqdn} filled in)")  # fmt: skip
    up.add_argument("--deploy-timeout", type=float, default=runner.DEFAULT_TIMEOUT)
    up.add_argument("--config", type=Path)
    up.set_defaults(func=cmd_upgrade)


def current_plan(config: MxctlConfig, target: str) -> UpgradePlan:
    journal = Journal(config.pair.state_dir / "journal.db")
    try:
        state = Controller(config, journal).load_state()
    finally:
        journal.close()
    hosts = (config.pair.primary, config.pair.standby)
    releases: dict[str, str] = {}
    for host in hosts:
        try:
            releases[host] = upgrade.release_over_ssh(config, host)
        except Exception as exc:  # the planner names the host whose release is unknown
            print(f"  {host}: release unknown ({exc})")
    view = PairView(hosts[0], hosts[1], state.primary, state.fenced, releases)
    return plan_upgrade(view, target, tuple(SUPPORTED))


def _deploy(args: argparse.Namespace, names: dict[str, str], host: str) -> Evidence:
    result = runner.run_deploy(
        args.inventory, args.deploy, limit=[names[host]], timeout=args.deploy_timeout
    )
    if not result.ok:
        tail = result.stderr.strip().splitlines()[-12:]
        said = " / ".join(line.strip() for line in tail if "rror" in line)
        raise StepFailed(
            f"deploy of {host} failed: {result.summary()}; pyinfra said: {said or tail[-1:]}",
            {"stderr_tail": tail},
        )
    changed = sorted(op.name for op in result.operations if op.changed)
    return {"seconds": round(result.seconds, 1), "changed": changed}


def cmd_upgrade(args: argparse.Namespace) -> int:
    from orchestrator.cli.maintenance_cmd import run_planned  # one way to move mail

    config = load_config(args.config, required=REQUIRED)
    pair = runner.preflight(args.inventory)
    names = {h.fqdn: h.name for h in (pair.primary, pair.standby)}
    for host in (config.pair.primary, config.pair.standby):
        if host not in names:
            raise UsageError(
                f"--inventory {args.inventory}: has no mail host {host} (config pair.* names it)"
            )
    plan = current_plan(config, args.to)
    if plan.blocker:
        raise UsageError(f"upgrade to {args.to}: {plan.blocker}")
    for host in plan.skipped:
        print(f"  {host} already runs {args.to}: left alone")
    print(f"upgrade to {args.to}: {len(plan.steps)} step(s)")
    for i, step in enumerate(plan.steps, 1):
        print(f"  {i:2}. {step.name}: {step.why}")
    if args.dry_run or not plan.steps:
        return 0

    def os_upgrade(host: str) -> Evidence:
        if args.os_upgrade_command:
            return upgrade.local_command(args.os_upgrade_command, host, upgrade.OS_UPGRADE_TIMEOUT)
        old = upgrade.release_over_ssh(config, host)
        return upgrade.apt_upgrade_over_ssh(config, host, old, args.to)

    journal = Journal(config.pair.state_dir / "journal.db")
    try:
        actions = upgrade.UpgradeActions(
            move=lambda planned: run_planned(
                config, PlannedMove(planned.kind, planned.to), SYSTEM_CLOCK.now()
            ),
            upgrade_os=os_upgrade,
            release_of=lambda host: upgrade.release_over_ssh(config, host),
            deploy=lambda host: _deploy(args, names, host),
            converge=lambda host, peer: upgrade.converge_with_peer(
                config, SYSTEM_CLOCK, journal, "upgrade-converge", host, peer
            ),
        )
        result = upgrade.run_upgrade(journal, SYSTEM_CLOCK, plan, args.to, actions)
        for event in journal.events(limit=200, run_id=result.run_id):
            if event.kind == "step" and event.status != "started":
                print(f"  {event.subject:22} {event.status:7} {event.reason}")
    finally:
        journal.close()
    print(f"upgrade {result.status}" + (f": {result.error}" if result.error else ""))
    return 0 if result.status == "done" else 1
