"""`mxctl backup list|run|status|restore|restore-host|drill`: the pair's backups.

The work happens on the current primary, by the backup agent the deploy installed there
(`mxctl-backup`), driven over SSH; restores go into the live primary and replication
carries them to the standby. Each command refreshes the controller's cached view of the
backups (read by `mxctl status` and /metrics) and journals what it did.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.backup import health, hosts, watch
from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import MxctlConfig, load_config
from orchestrator.controller.journal import Journal
from orchestrator.errors import MxctlError

STALE_EXIT = 3  # `mxctl backup status`: the last good backup is older than the policy


def register(subparsers: Any) -> None:
    top = subparsers.add_parser("backup", help="backups: list, restore, restore drills")
    sub = top.add_subparsers(dest="backup_command", required=True)

    def command(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--config", type=Path)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(func=func)
        return parser

    command("list", "the pair's snapshots", cmd_list)
    command("run", "back up now, on the primary", cmd_run)
    command("status", "last good backup, its age against the policy, last drill", cmd_status)
    rs = command("restore", "restore a user's mail into the live primary", cmd_restore)
    rs.add_argument("--user", required=True, help="the mail address")
    rs.add_argument("--mailbox", help="one mailbox (default: all of the user's)")
    rs.add_argument(
        "--at",
        required=True,
        help="the newest backup at or before this ISO time; or 'latest', or an id",
    )
    rs.add_argument("--into", help="parent folder (default Restored-<backup time>; '' = in place)")
    rh = command("restore-host", "disaster recovery: every mailbox, in place", cmd_restore_host)
    rh.add_argument("--at", default="latest")
    dr = command("drill", "restore a sample into scratch and compare with live", cmd_drill)
    dr.add_argument("--at", default="latest")
    dr.add_argument("--sample", type=int, default=5, help="mailboxes to check (0: all)")
    dr.add_argument("--seed", type=int, help="sample seed (default: varies by day)")


def _config(args: argparse.Namespace) -> MxctlConfig:
    config = load_config(args.config, required=hosts.REQUIRED, only=hosts.REQUIRED)
    # The controller's state directory: the journal, and the backups' view `mxctl status`
    # and /metrics read. Made here too, so a backup command works before the first watch.
    config.pair.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return config


def _journal(config: MxctlConfig, what: str, status: str, reason: str, data: Any) -> None:
    """Journal an operator's backup action in the controller's journal, when it is here."""
    journal = Journal(config.pair.state_dir / "journal.db")
    try:
        journal.record(SYSTEM_CLOCK.now(), "backup", what, status, reason, {"reply": data})
    finally:
        journal.close()


def _refresh_cache(config: MxctlConfig) -> health.BackupHealth:
    states = hosts.read_states(config)
    watch.write_cache(config.pair.state_dir, states, SYSTEM_CLOCK)
    return health.assess(states, SYSTEM_CLOCK.now())


def _primary_call(config: MxctlConfig, argv: list[str]) -> hosts.AgentReply:
    target = hosts.primary(config)
    return hosts.call(target, argv)


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else human)


def cmd_list(args: argparse.Namespace) -> int:
    config = _config(args)
    reply = _primary_call(config, ["snapshots"])
    snaps = reply.data.get("snapshots", [])
    lines = [f"{len(snaps)} snapshots (repository read from {reply.host}):"]
    for s in snaps:
        lines.append(
            f"  {s['short_id']}  {s['time'][:19]}  from {s.get('hostname', '?')}  "
            f"{', '.join(s.get('tags') or [])}"
        )
    _emit(args, reply.data, "\n".join(lines))
    return 0 if reply.ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    reply = _primary_call(config, ["run"])
    _journal(config, "run", reply.data.get("result", "?"), f"backup on {reply.host}", reply.data)
    _refresh_cache(config)
    d = reply.data
    human = (
        f"backup {d.get('result')} on {reply.host}: snapshot {d.get('snapshot')}, "
        f"{d.get('messages')} messages, {d.get('bytes_added', 0) / 1e6:.1f} MB added, "
        f"{d.get('seconds')} s"
        if d.get("result") == "ok"
        else f"backup {d.get('result')} on {reply.host}: {d.get('error') or d.get('why')}"
    )
    _emit(args, d, human)
    return 0 if reply.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    h = _refresh_cache(config)
    states = json.loads(watch.cache_path(config.pair.state_dir).read_text())["hosts"]
    drill = h.drill_result or "never run"
    if h.drill_failed_mailboxes:
        drill += f" ({', '.join(h.drill_failed_mailboxes)})"
    human = f"{'ALERT: ' if h.stale else ''}backups: {h.why}\nlast drill: {drill}"
    _emit(args, {"health": h.as_dict(), "hosts": states}, human)
    return STALE_EXIT if h.stale else 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = _config(args)
    argv = ["restore", "--user", args.user, "--at", args.at]
    if args.mailbox:
        argv += ["--mailbox", args.mailbox]
    if args.into is not None:
        argv += ["--into", args.into]
    reply = _primary_call(config, argv)
    d = reply.data
    _journal(config, "restore", d.get("result", "?"), f"{args.user} at {args.at}", d)
    if not reply.ok:
        raise MxctlError(f"restore on {reply.host} failed: {d.get('error') or d.get('errors')}")
    lines = [
        f"restored {args.user} from snapshot {d['snapshot']} ({d['snapshot_time']}) "
        f"into {reply.host} in {d['seconds']} s:"
    ]
    for m in d["mailboxes"]:
        lines.append(
            f"  {m['mailbox']} -> {m['into']}: {m['imported']} imported, "
            f"{m['already_there']} already there"
        )
    _emit(args, d, "\n".join(lines))
    return 0


def cmd_restore_host(args: argparse.Namespace) -> int:
    config = _config(args)
    reply = _primary_call(config, ["restore-host", "--at", args.at])
    d = reply.data
    _journal(config, "restore-host", d.get("result", "?"), f"all mailboxes at {args.at}", d)
    if d.get("error"):
        raise MxctlError(f"restore-host on {reply.host} failed: {d['error']}")
    total = sum(m["imported"] for u in d.get("users", []) for m in u.get("mailboxes", []))
    lines = [
        f"restore-host {d.get('result')} on {reply.host} from snapshot {d.get('snapshot')}:"
        f" {total} messages imported"
    ]
    for u in d.get("users", []):
        boxes = ", ".join(f"{m['mailbox']} {m['imported']}" for m in u.get("mailboxes", []))
        lines.append(f"  {u.get('user', '?')}: {boxes or u.get('error') or u.get('errors')}")
    _emit(args, d, "\n".join(lines))
    return 0 if reply.ok else 1


def cmd_drill(args: argparse.Namespace) -> int:
    config = _config(args)
    seed = args.seed if args.seed is not None else SYSTEM_CLOCK.now().toordinal()
    argv = ["drill", "--at", args.at, "--sample", str(args.sample), "--seed", str(seed)]
    reply = _primary_call(config, argv)
    d = reply.data
    reason = d.get("why") or ", ".join(d.get("failed_mailboxes", [])) or "all sampled identical"
    _journal(config, "drill", d.get("result", "?"), reason, d)
    _refresh_cache(config)
    if d.get("error"):
        raise MxctlError(f"drill on {reply.host} failed: {d['error']}")
    lines = [
        f"restore drill {d['result'].upper()} on {reply.host}: snapshot {d['snapshot']}, "
        f"{d.get('sampled', 0)} of {d.get('of', 0)} mailboxes, "
        f"{d.get('messages_compared', 0)} messages, {d.get('seconds')} s"
    ]
    if d.get("why"):
        lines.append(f"  {d['why']}")
    for m in d.get("mailboxes", []):
        mark = "ok  " if m["ok"] else "FAIL"
        lines.append(f"  {mark} {m['user']}/{m['mailbox']}: {m['why']}")
    _emit(args, d, "\n".join(lines))
    return 0 if d.get("result") == "passed" else 1
