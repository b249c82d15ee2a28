"""Entry point of `mxctl`: one argparse tree, one module per subcommand group.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its subcommands
and sets `func` on each parser; `func(args) -> int` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.errors import MxctlError

COMMAND_MODULES = [
    "orchestrator.cli.lab_cmd",
    "orchestrator.cli.dns_cmd",
    "orchestrator.cli.deploy_cmd",
    "orchestrator.cli.probe_cmd",
    "orchestrator.cli.controller_cmd",
    "orchestrator.cli.maintenance_cmd",
]


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
