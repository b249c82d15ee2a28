"""`mxctl dns show|plan|apply|verify`: the owned DNS records, their plans and their proof."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config import load_config
from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.factory import make_provider, make_verifier
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.records import RRset
from orchestrator.dns.verify import VerifyReport
from orchestrator.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dns", help="show, plan, apply and verify the owned DNS records")
    sub = parser.add_subparsers(dest="dns_command", metavar="DNS_COMMAND", required=True)

    def add(name: str, help_text: str, func: Any, mx: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--config",
            type=Path,
            help="mxctl.toml (default: $MXCTL_CONFIG or /etc/mxctl/mxctl.toml)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if mx:
            p.add_argument("--mx", required=True, metavar="HOST", help="mail host to point MX at")
            p.add_argument(
                "--backup",
                metavar="HOST",
                help="the other mail host, as a lower-priority MX (only when healthy, unfenced)",
            )
        p.set_defaults(func=func)
        return p

    add("show", "the owned records as the provider serves them", cmd_show)
    add("plan", "what would change to point mail at HOST (changes nothing)", cmd_plan, mx=True)
    apply = add("apply", "compare-and-swap the records to point mail at HOST", cmd_apply, mx=True)
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    apply.add_argument(
        "--no-verify", action="store_true", help="skip the check at every authoritative server"
    )
    add("verify", "check every authoritative server serves the owned records alike", cmd_verify)


def _setup(args: argparse.Namespace) -> tuple[DnsConfig, BaseProvider]:
    config = load_config(args.config, required=("dns",), only=("dns",)).dns
    return config, make_provider(config, SYSTEM_CLOCK)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)


def _current(config: DnsConfig, provider: BaseProvider) -> list[RRset]:
    return [provider.read(r.name, r.rtype) for r in config.records]


def cmd_show(args: argparse.Namespace) -> int:
    config, provider = _setup(args)
    try:
        current = _current(config, provider)
    finally:
        provider.close()
    text = "\n".join(r.describe() for r in current)
    _emit(args, {"provider": provider.kind, "records": [r.to_json() for r in current]}, text)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    config, provider = _setup(args)
    try:
        plan = build_plan(config, provider, args.mx, backup=args.backup)
    finally:
        provider.close()
    _emit(args, plan.to_json(), plan.describe())
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    config, provider = _setup(args)
    try:
        plan = build_plan(config, provider, args.mx, backup=args.backup)
        if not args.json:
            print(plan.describe())
        if plan.empty:
            results = []
        else:
            if not args.yes and not _confirm(f"apply {len(plan.changes)} change(s)?"):
                print("not applied", file=sys.stderr)
                return 1
            results = apply_plan(plan, config, provider)
        report = None if args.no_verify else _verify(config, provider, plan.desired)
    finally:
        provider.close()
    data: dict[str, Any] = {
        "plan": plan.to_json(),
        "results": [r.to_json() for r in results],
        "verify": report.to_json() if report else None,
        "requests": provider.requests,
    }
    lines = [f"{r.outcome.value}: {r.change.describe()}" for r in results]
    if report is not None:
        lines.append(_report_text(report))
    _emit(args, data, "\n".join(lines))
    return 0 if report is None or report.ok else 3


def cmd_verify(args: argparse.Namespace) -> int:
    config, provider = _setup(args)
    try:
        # What the provider holds is what every authoritative server must serve.
        report = _verify(config, provider, _current(config, provider))
    finally:
        provider.close()
    _emit(args, report.to_json(), _report_text(report))
    return 0 if report.ok else 3


def _verify(config: DnsConfig, provider: BaseProvider, desired: Any) -> VerifyReport:
    return make_verifier(config, provider, SYSTEM_CLOCK).wait(desired)


def _report_text(report: VerifyReport) -> str:
    verdict = "verified" if report.ok else "NOT verified"
    lines = [
        f"{verdict} at every authoritative server in {report.elapsed:.2f} s "
        f"({report.rounds} rounds)"
    ]
    for server in report.servers:
        served = "; ".join(a.describe() for a in server.answers)
        state = "ok" if server.ok else "; ".join(server.problems)
        lines.append(
            f"  {server.zone} @ {server.target}: serial {server.serial}: {served} [{state}]"
        )
    lines += [f"  {p}" for p in report.problems]
    return "\n".join(lines)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")
