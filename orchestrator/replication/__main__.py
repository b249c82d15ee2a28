"""`mxctl-dsync run|status|sync`: the service and its command line (on the mail hosts).

    mxctl-dsync run --config /etc/mxctl/dsync.json   # the daemon (systemd runs it)
    mxctl-dsync status                               # like `doveadm -f tab replicator status`
    mxctl-dsync status '*'                           # per user, like `... replicator status '*'`
    mxctl-dsync sync --all | USER...                 # sync now (USER also clears a refusal)

Exit codes: 0 done; 64 usage; 75 the service does not answer (replication is not running).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .service import Settings, serve

DEFAULT_CONFIG = Path("/etc/mxctl/dsync.json")
# `sync` right after the service (re)started (a deploy restarts it, then asks for a sync of
# every user) finds the port closed for a moment: it waits this long for it to open.
SYNC_WAIT_FOR_SERVICE = 20.0


def _ask(settings: Settings, path: str, body: dict[str, object] | None = None) -> str:
    url = f"http://127.0.0.1:{settings.event_port}{path}"
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=15) as reply:
        text: str = reply.read().decode()
        return text


def _ask_when_up(settings: Settings, path: str, body: dict[str, object], wait: float) -> str:
    """_ask, retried while the service's port refuses connections (it is starting)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return _ask(settings, path, body)
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)
            if not refused or time.monotonic() >= deadline:
                raise
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxctl-dsync")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the service")
    status = sub.add_parser("status", help="queue summary, or per user with '*'")
    status.add_argument("users", nargs="?")
    sync = sub.add_parser("sync", help="sync users now")
    sync.add_argument("--all", action="store_true")
    sync.add_argument("user", nargs="*")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(args.config)
    except (OSError, ValueError, TypeError) as exc:
        print(f"mxctl-dsync: cannot read {args.config}: {exc}", file=sys.stderr)
        return 64
    if args.command == "run":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        serve(settings)
        return 0
    if args.command == "sync" and not (args.all or args.user):
        print("mxctl-dsync sync: name users or pass --all", file=sys.stderr)
        return 64
    try:
        if args.command == "status":
            sys.stdout.write(_ask(settings, "/users" if args.users else "/status"))
        else:
            body: dict[str, object] = {"all": True} if args.all else {"users": args.user}
            sys.stdout.write(_ask_when_up(settings, "/sync", body, SYNC_WAIT_FOR_SERVICE))
    except (OSError, urllib.error.URLError) as exc:
        print(f"mxctl-dsync: the service does not answer ({exc}): replication is not running",
              file=sys.stderr)  # fmt: skip
        return 75
    return 0


if __name__ == "__main__":
    sys.exit(main())
