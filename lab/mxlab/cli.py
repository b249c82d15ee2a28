"""`mxctl lab ...`: the local lab of real hosts (root needed).

Installed with the mxctl-lab distribution, which registers this module under the
`mxctl.commands` entry point; a production mxctl has no `lab` command.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mxlab import control, controllerhosts, dkimdns, inventory, lab
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.state import lab_json_path, load_lab_state, state_dir
from mxlab.targets import lab_settings
from orchestrator.cli import deploy_cmd, probe_cmd
from orchestrator.deploy.dkim import DkimRecord
from orchestrator.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lab", help="build, inspect, break and remove the local lab")
    lab_sub = parser.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)

    up = lab_sub.add_parser("up", help="build and boot the lab (no-op when it is up)")
    up.add_argument("--mirror", help="Debian mirror URL (default: the one apt uses here)")
    up.add_argument(
        "--suite",
        choices=("bookworm", "trixie"),
        help="Debian release of the mail hosts (default: $MXCTL_LAB_SUITE, else bookworm)",
    )
    up.set_defaults(func=cmd_up)

    down = lab_sub.add_parser("down", help="remove every lab process, mount and namespace")
    down.set_defaults(func=cmd_down)

    status = lab_sub.add_parser("status", help="show the lab hosts and their faults")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    ex = lab_sub.add_parser("exec", help="run a command inside a lab host: exec HOST -- CMD")
    ex.add_argument("host")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)

    fault = lab_sub.add_parser(
        "fault",
        help="inject a fault: HOST down|kill|up|link-down|link-up|freeze|thaw|cannot-act|"
        "can-act, ns2 lag SECONDS|unlag, or partition|heal A B",
    )
    fault.add_argument("words", nargs="+", metavar="WORD")
    fault.set_defaults(func=cmd_fault)

    ctl = lab_sub.add_parser(
        "controllers",
        help="add (up) or remove (down) the controller hosts ctl1..ctl3 of a running lab",
    )
    ctl.add_argument("action", choices=("up", "down"))
    ctl.set_defaults(func=cmd_controllers)

    rec = lab_sub.add_parser(
        "recreate", help="destroy a host (its files wiped) and boot a bare one in its place"
    )
    rec.add_argument("hosts", nargs="+", metavar="HOST")
    rec.add_argument("--suite", help="boot the new mail host(s) on this Debian suite (e.g. trixie)")
    rec.set_defaults(func=cmd_recreate)

    rel = lab_sub.add_parser(
        "release",
        help="offer the mail hosts a newer Debian release to upgrade to in place "
        "(what `mxctl upgrade`'s apt full-upgrade reads)",
    )
    rel.add_argument("suite", choices=("trixie",), help="the release to offer")
    rel.add_argument("hosts", nargs="*", metavar="HOST", help="mail hosts (default: both)")
    rel.add_argument("--mirror", help="Debian mirror URL (default: the one apt uses here)")
    rel.set_defaults(func=cmd_release)

    deploy = lab_sub.add_parser(
        "deploy", help="deploy the lab: the mail pair and the outside MTA, DKIM published"
    )
    deploy_cmd.add_run_options(deploy)
    deploy.set_defaults(func=cmd_deploy)

    inv = lab_sub.add_parser(
        "inventory", help="write the lab's inventory as a plain pyinfra inventory file"
    )
    inv.add_argument("path", help="where to write it, e.g. ./inventory.py")
    inv.set_defaults(func=cmd_inventory)

    probe = lab_sub.add_parser("probe", help="one round of health probes against the lab pair")
    probe_cmd.add_probe_options(probe)
    probe.set_defaults(func=cmd_probe)

    check = lab_sub.add_parser("check", help="parity of the lab pair (users, DKIM, certs, DNS)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_check)


def cmd_deploy(args: argparse.Namespace) -> int:
    def publish(records: Sequence[DkimRecord]) -> list[str]:
        return dkimdns.publish(load_lab_state(), records)

    return deploy_cmd.report_deploy(args, LAB_INVENTORY, LAB_DEPLOY, publish, "the lab DNS")


def cmd_inventory(args: argparse.Namespace) -> int:
    path = inventory.write_standalone(Path(args.path))
    print(f"wrote {path}: `pyinfra {path} mxctl_deploys.mailpair.apply` deploys the lab pair")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    return probe_cmd.run_probe(lab_settings(load_lab_state()), args)


def cmd_check(args: argparse.Namespace) -> int:
    return probe_cmd.run_check(lab_settings(load_lab_state()), args)


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    already = lab.is_up()
    state = lab.up(mirror=args.mirror, suite=args.suite)
    took = time.monotonic() - started
    verb = "was already up" if already else f"is up ({took:.1f} s)"
    print(f"lab {verb}: {', '.join(f'{h.name}={h.address}' for h in state.hosts.values())}")
    print(f"mail hosts: Debian {state.extra.get('mail_suite', 'bookworm')}")
    print(f"state: {lab_json_path()}")
    return 0


def cmd_controllers(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.action == "up":
        state = controllerhosts.up()
        hosts = ", ".join(f"{n}={state.host(n).address}" for n in controllerhosts.NAMES)
        print(f"controller hosts up ({time.monotonic() - started:.1f} s): {hosts}")
    else:
        controllerhosts.down()
        print(f"controller hosts removed ({time.monotonic() - started:.1f} s)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    started = time.monotonic()
    lab.down()
    print(f"lab is down ({time.monotonic() - started:.1f} s); nothing left under {state_dir()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rows = control.status_dicts()
    up = lab.is_up()
    if args.json:
        print(json.dumps({"up": up, "hosts": rows}, indent=2))
        return 0 if up else 3
    print(f"lab: {'up' if up else 'down'}")
    header = f"{'host':8} {'address':14} {'role':14} {'running':8} {'link':5} {'ssh':5} faults"
    print(header)
    for r in rows:
        faults = []
        if r["silent"]:
            faults.append("silent (every packet dropped)")
        if r["frozen"]:
            faults.append("frozen")
        if r["cut_from"]:
            faults.append("partitioned from " + ",".join(map(str, r["cut_from"])))  # type: ignore[call-overload]
        if not r["acts"]:
            faults.append("cannot act (every command fails)")
        if r["lag"] is not None:
            faults.append(f"serves changes {r['lag']:g} s late")
        print(
            f"{r['name']!s:8} {r['address']!s:14} {r['role']!s:14} "
            f"{'yes' if r['running'] else 'no':8} {'up' if r['link_up'] else 'down':5} "
            f"{'open' if r['ssh_open'] else '-':5} {'; '.join(faults) or '-'}"
        )
    return 0 if up else 3


def cmd_exec(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return control.exec_in(args.host, cmd).returncode


def cmd_recreate(args: argparse.Namespace) -> int:
    from mxlab.recreate import recreate

    with lab.lab_lock(wait=True):
        for host in args.hosts:
            print(recreate(host, args.suite))
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from mxlab.release import offer_release

    with lab.lab_lock(wait=True):
        print(offer_release(args.suite, args.hosts, args.mirror).summary())
    return 0


FAULT_USAGE = (
    "usage: mxctl lab fault HOST down|kill|up|link-down|link-up|freeze|thaw, "
    "mxctl lab fault HOST cannot-act|can-act, mxctl lab fault ns2 lag SECONDS|unlag, "
    "or mxctl lab fault partition|heal HOST_A HOST_B"
)


def cmd_fault(args: argparse.Namespace) -> int:
    words = args.words
    value = None
    if words[0] in control.FAULTS_TWO_HOSTS:
        if len(words) != 3:
            raise UsageError(f"usage: mxctl lab fault {words[0]} HOST_A HOST_B")
        action, host, peer = words[0], words[1], words[2]
    elif len(words) == 3 and words[1] in control.FAULTS_WITH_VALUE:
        host, action, peer, value = words[0], words[1], None, words[2]
    elif len(words) == 2:
        host, action, peer = words[0], words[1], None
    else:
        raise UsageError(FAULT_USAGE)
    with lab.lab_lock(wait=True):
        print(control.fault(host, action, peer, value))
    return 0
