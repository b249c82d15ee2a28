"""`mxctl probe` (one round of health probes) and `mxctl check` (primary/standby parity)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import load_config
from orchestrator.controller.downtime import downtime_bound, downtime_problem
from orchestrator.controller.observe import probe_settings
from orchestrator.probes.parity import Finding, parity_check
from orchestrator.probes.round import probe_round
from orchestrator.probes.settings import ProbeSettings
from orchestrator.probes.table import render
from orchestrator.remote import SshAccess


def register(subparsers: Any) -> None:
    probe = subparsers.add_parser(
        "probe", help="one round of health probes against every mail host, as a table"
    )
    add_probe_options(probe)
    _add_config(probe)
    probe.set_defaults(func=cmd_probe)

    check = subparsers.add_parser(
        "check", help="parity of primary and standby: users, DKIM, certificates, MX/SPF/DKIM"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config(check)
    check.set_defaults(func=cmd_check)


def add_probe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-canary", action="store_true", help="skip the end-to-end canary")
    parser.add_argument("--no-ssh", action="store_true", help="skip the host state over SSH")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="mxctl.toml with [dns], [pair] and [probes] (default: $MXCTL_CONFIG, "
        "else /etc/mxctl/mxctl.toml)",
    )


def load_settings(args: argparse.Namespace) -> ProbeSettings:
    """The controller's view: hosts in their configured roles, from mxctl.toml (no canary
    or parity settings there yet, so those parts are skipped)."""
    config = load_config(
        Path(args.config) if args.config else None,
        required=("dns", "pair", "probes"),
        only=("ssh",),
    )
    ssh = config.sections.get("ssh")
    return probe_settings(
        config.probes,
        config.dns,
        ssh if isinstance(ssh, SshAccess) else None,
        config.pair.primary,
        config.pair.standby,
    )


def cmd_probe(args: argparse.Namespace) -> int:
    return run_probe(load_settings(args), args)


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(
        Path(args.config) if args.config else None,
        required=("dns", "pair", "probes"),
        only=("ssh", "policy"),
    )
    bound = downtime_bound(config.policy, config.dns)
    problem = downtime_problem(bound, config.policy.max_client_downtime)
    extra = Finding("client-downtime", "client names", problem is None, problem or bound.describe())
    return run_check(load_settings(args), args, [extra])


def run_probe(settings: ProbeSettings, args: argparse.Namespace) -> int:
    """One round against `settings`' targets, printed as a table or --json."""
    # paramiko logs every connection at INFO; one line per host per round is noise here.
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    result = asyncio.run(
        probe_round(
            settings,
            SYSTEM_CLOCK,
            with_host_state=not args.no_ssh,
            with_canary=not args.no_canary,
        )
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(render(result.results))
        failed = len(result.failures())
        verdict = "all ok" if not failed else f"{failed} of {len(result.results)} failed"
        print(f"\nround of {len(result.results)} probes in {result.duration:.2f} s: {verdict}")
    return 0 if result.ok else 1


def _render_findings(findings: list[Finding]) -> str:
    rows = [("check", "subject", "result", "detail")]
    rows += [(f.check, f.subject, "ok" if f.ok else "MISMATCH", f.detail) for f in findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join([*(r[i].ljust(widths[i]) for i in range(3)), r[3]]).rstrip() for r in rows
    )


def run_check(
    settings: ProbeSettings, args: argparse.Namespace, extra: list[Finding] | None = None
) -> int:
    """Parity of the pair under `settings` (plus `extra` findings), as a table or --json."""
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    findings = asyncio.run(parity_check(settings, SYSTEM_CLOCK)) + (extra or [])
    ok = all(f.ok for f in findings)
    if args.json:
        print(json.dumps({"ok": ok, "findings": [f.to_json() for f in findings]}, indent=2))
    else:
        print(_render_findings(findings))
        bad = sum(not f.ok for f in findings)
        print(f"\n{'parity ok' if ok else f'{bad} of {len(findings)} checks failed'}")
    return 0 if ok else 1
