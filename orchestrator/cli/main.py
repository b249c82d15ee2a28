"""Entry point of `mxctl`: one argparse tree, one module per subcommand group.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its subcommands
and sets `func` on each parser; `func(args) -> int` returns the exit code. Other installed
distributions add command groups the same way through the `mxctl.commands` entry point
(the lab's `mxctl lab` exists only where the mxctl-lab distribution is installed).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from orchestrator import __version__
from orchestrator.errors import MxctlError

COMMAND_MODULES = [
    "orchestrator.cli.dns_cmd",
    "orchestrator.cli.deploy_cmd",
    "orchestrator.cli.probe_cmd",
    "orchestrator.cli.controller_cmd",
    "orchestrator.cli.maintenance_cmd",
    "orchestrator.cli.fence_cmd",
    "orchestrator.cli.backup_cmd",
    "orchestrator.cli.drill_cmd",
    "orchestrator.cli.cert_cmd",
    "orchestrator.cli.upgrade_cmd",
]

PLUGIN_GROUP = "mxctl.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mxctl",
        description="Deploy, watch and fail over a Postfix/Dovecot mail pair.",
    )
    parser.add_argument("--version", action="version", version=f"mxctl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for plugin in entry_points(group=PLUGIN_GROUP):
        try:
            module = plugin.load()
        except ImportError as exc:
            # A half-removed plugin must not take the whole CLI (and failover tooling) down.
            print(
                f"mxctl: warning: command group {plugin.name!r} unavailable: {exc}", file=sys.stderr
            )
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except MxctlError as exc:
        print(f"mxctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mxctl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
