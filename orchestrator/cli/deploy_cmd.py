"""`mxctl deploy`: validate the inventory, then run the pyinfra deploys (a thin wrapper).

mxctl deploy -i inventories/prod.py   # production: the mail pair
mxctl deploy -i ... --check           # validate only: no connection to any host

The deploys come from the installed `mxctl_deploys` package, so this works from any
directory holding an inventory. `report_deploy` is shared with `mxctl lab deploy`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.deploy import dkim, runner
from orchestrator.deploy.dkim import DkimRecord
from orchestrator.deploy.spec import MailPair
from orchestrator.errors import UsageError

# What happens to the DKIM records after a successful deploy: returns the names it
# published (the lab writes them into its DNS; production leaves that to the operator).
Publisher = Callable[[Sequence[DkimRecord]], list[str]]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy", help="deploy the mail pair with pyinfra (validates the inventory first)"
    )
    parser.add_argument(
        "-i", "--inventory", required=True, help="pyinfra inventory file, e.g. inventories/x.py"
    )
    add_run_options(parser)
    parser.set_defaults(func=cmd_deploy)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="validate the inventory and stop (no host touched)"
    )
    parser.add_argument("--dry", action="store_true", help="show what would change, change nothing")
    parser.add_argument("--limit", action="append", default=[], help="only these hosts/groups")
    parser.add_argument(
        "--data", action="append", default=[], metavar="KEY=VALUE", help="override inventory data"
    )
    parser.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT, help="seconds")
    parser.add_argument("--json", action="store_true", help="machine-readable result")


def _overrides(items: list[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--data {item!r}: expected KEY=VALUE")
        data[key] = value
    return data


def _describe(pair: MailPair) -> str:
    return (
        f"inventory OK: {pair.primary.name} primary ({pair.primary.fqdn}), "
        f"{pair.standby.name} standby ({pair.standby.fqdn}); domains {', '.join(pair.domains)}; "
        f"{len(pair.users) - 1} users + probe {pair.probe_user.address}"
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    return report_deploy(args, args.inventory, runner.MAIL_DEPLOY)


def report_deploy(
    args: argparse.Namespace,
    inventory: str,
    deploy: str,
    publish: Publisher | None = None,
    where: str = "",
) -> int:
    """Validate `inventory`, run `deploy`, print (or --json) what changed and the DKIM
    records; `publish` puts the records into DNS after a successful run (`where` names it)."""
    data = _overrides(args.data)
    pair = runner.preflight(inventory)
    records = dkim.records(pair.dkim_selector, pair.domains, pair.dkim_key.reveal())
    if not args.json:
        print(_describe(pair))
    if args.check:
        if args.json:
            print(json.dumps({"valid": True, "dkim_records": [r.zone_line() for r in records]}))
        else:
            for record in records:
                print(f"DKIM record to publish: {record.zone_line()}")
        return 0
    result = runner.run_deploy(
        inventory, deploy, limit=args.limit, data=data, dry=args.dry, timeout=args.timeout
    )
    published: list[str] = []  # names whose record this run wrote into DNS
    in_dns = publish is not None and result.ok and not args.dry
    if publish is not None and in_dns:
        published = publish(records)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "seconds": round(result.seconds, 3),
                    "changed": {
                        op.name: list(op.changed) for op in result.operations if op.changed
                    },
                    "failed": result.failed(),
                    "failed_hosts": list(result.failed_hosts),
                    "dkim_records": [r.zone_line() for r in records],
                    "dkim_published": published,
                },
                indent=2,
            )
        )
    else:
        for op in result.operations:
            if op.changed or op.failed:
                state = f"changed on {', '.join(op.changed)}" if op.changed else ""
                if op.failed:
                    state += f" FAILED on {', '.join(op.failed)}"
                print(f"  {op.name}: {state.strip()}")
        print(("deploy done: " if result.ok else "deploy FAILED: ") + result.summary())
        for record in records:
            if in_dns:
                verb = f"published in {where}" if record.name in published else f"in {where}"
            else:
                verb = "to publish"
            print(f"DKIM record {verb}: {record.zone_line()}")
        if not result.ok:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            print(f"pyinfra said:\n{tail}")
    return 0 if result.ok else 1
