"""`mxctl deploy`: validate the inventory, then run the pyinfra deploys (a thin wrapper).

mxctl deploy --lab                    # the local lab: mail pair + sender, DKIM published
mxctl deploy -i inventories/prod.py   # production: the mail pair
mxctl deploy -i ... --check           # validate only: no connection to any host
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.deploy import dkim, labdns, runner
from orchestrator.deploy.spec import MailPair
from orchestrator.errors import UsageError
from orchestrator.lab.state import load_lab_state

LAB_INVENTORY = "inventories/lab.py"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy", help="deploy the mail pair with pyinfra (validates the inventory first)"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-i", "--inventory", help="pyinfra inventory file, e.g. inventories/x.py")
    where.add_argument("--lab", action="store_true", help=f"the local lab ({LAB_INVENTORY})")
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
    parser.set_defaults(func=cmd_deploy)


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
    inventory = LAB_INVENTORY if args.lab else args.inventory
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
    deploys = [runner.MAIL_DEPLOY] + ([runner.SENDER_DEPLOY] if args.lab else [])
    result = runner.run_deploy(
        inventory, deploys, limit=args.limit, data=data, dry=args.dry, timeout=args.timeout
    )
    published: list[str] = []  # names whose record this run wrote into the lab DNS
    in_lab_dns = args.lab and result.ok and not args.dry
    if in_lab_dns:
        published = labdns.publish(load_lab_state(), records)
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
            if in_lab_dns:
                verb = "published in the lab DNS" if record.name in published else "in the lab DNS"
            else:
                verb = "to publish"
            print(f"DKIM record {verb}: {record.zone_line()}")
        if not result.ok:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            print(f"pyinfra said:\n{tail}")
    return 0 if result.ok else 1
