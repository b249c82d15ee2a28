"""`mxctl-backup COMMAND`: the agent's entry point; every command prints one JSON object.

Exit codes: 0 done (or skipped on the standby), 1 the job failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from . import jobs, mailstore, restic
from .primary import current_role
from .settings import LOCK_FILE, STATE_DIR, AgentSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxctl-backup")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="back up now if this host is the primary (the timer's job)")
    run.add_argument("--force", action="store_true", help="even on the standby")
    sub.add_parser("role", help="is this host the primary, and why")
    sub.add_parser("init", help="create the repository unless it exists")
    sub.add_parser("snapshots", help="the pair's snapshots")
    sub.add_parser("state", help="last backup, last drill, policy")
    rs = sub.add_parser("restore", help="restore a user's mail into the live store")
    rs.add_argument("--user", required=True)
    rs.add_argument("--mailbox")
    rs.add_argument("--at", default="latest")
    rs.add_argument("--into")
    rh = sub.add_parser("restore-host", help="every mailbox back under its own name")
    rh.add_argument("--at", default="latest")
    dr = sub.add_parser("drill", help="restore a sample into scratch and compare with live")
    dr.add_argument("--at", default="latest")
    dr.add_argument("--sample", type=int, default=0)
    dr.add_argument("--seed", type=int, default=-1, help="sample seed (default: the day)")
    dr.add_argument("--if-primary", action="store_true", help="skip on the standby (timer)")
    rc = sub.add_parser("restic", help="run restic with this host's repository settings")
    rc.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _locked() -> Any:
    """One job at a time on this host (the timer and an operator's restore)."""
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    handle = open(LOCK_FILE, "w")  # noqa: SIM115 - held until exit
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _dispatch(args: argparse.Namespace, settings: AgentSettings) -> dict[str, Any]:
    if args.command == "role":
        role = current_role(settings.fqdn, settings.mx_domain)
        return {"host": settings.fqdn, "primary": role.primary, "why": role.why}
    if args.command == "state":
        return {
            "host": settings.fqdn,
            **jobs.read_state(),
            "interval_s": settings.interval_s,
            "max_age_s": settings.max_age_s,
        }
    if args.command == "init":
        return {"repository": restic.ensure_repository(settings)}
    if args.command == "snapshots":
        return {"snapshots": restic.snapshots(settings)}
    _lock = _locked()
    if args.command == "run":
        return jobs.run_backup(settings, force=args.force)
    if args.command == "restore":
        return jobs.restore(settings, args.user, args.mailbox, args.at, args.into)
    if args.command == "restore-host":
        return jobs.restore_host(settings, args.at)
    if args.command == "drill":
        role = current_role(settings.fqdn, settings.mx_domain)
        if args.if_primary and not role.primary:
            return {"result": "skipped", "why": f"not the primary: {role.why}"}
        seed = args.seed if args.seed >= 0 else jobs.now().toordinal()
        return jobs.drill(settings, args.at, args.sample, seed)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = AgentSettings.load()
    if args.command == "restic":
        os.umask(0o077)
        env = restic.environ_for_shell(settings)
        extra = ["-o", f"sftp.command={settings.sftp_command}"] if settings.sftp_command else []
        return subprocess.call(["restic", *extra, *args.args], env=env)
    try:
        result = _dispatch(args, settings)
    except (LookupError, restic.ResticError, mailstore.StoreError) as exc:
        result = {"result": "failed", "error": str(exc)}
    print(json.dumps(result, sort_keys=True))
    return 1 if result.get("result") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
