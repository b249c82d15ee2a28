"""Helpers for the backup lab tests: the real `mxctl backup` CLI, IMAP reads, the repo."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mxlab import control
from mxlab.controlled import converge_mail_pair
from mxlab.mailtraffic import CLIENT_NAME, Imaps
from mxlab.state import LabState, state_dir

ALICE = "alice@example.test"
REPO = "/srv/backup/repo"  # on the lab host `backup` (mxlab.deploys.backuphost)


def config_path() -> Path:
    return state_dir() / "mxctl.toml"


def mxctl(*args: str, check: bool = True, timeout: float = 900) -> tuple[int, dict[str, Any]]:
    """`mxctl backup ARGS --json` against the lab; (exit code, reply)."""
    argv = [sys.executable, "-m", "orchestrator.cli.main", "backup", *args,
            "--config", str(config_path()), "--json"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"mxctl backup {' '.join(args)}: rc {proc.returncode}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")  # fmt: skip
    out = proc.stdout.strip()
    return proc.returncode, (json.loads(out) if out.startswith("{") else {"raw": out})


def imap(lab: LabState, host: str, user: str = ALICE) -> Imaps:
    secret = state_dir() / "secrets" / f"mail-user-{user.replace('@', '-at-')}"
    context = ssl.create_default_context(cafile=lab.ca_cert)
    client = Imaps(lab.host(host).address, CLIENT_NAME, context, timeout=30)
    client.login(user, secret.read_text().strip())
    return client


def subjects(
    lab: LabState, host: str, mailbox: str, prefix: str, user: str = ALICE
) -> Counter[str]:
    """Subjects containing `prefix-` (every one for "") in `mailbox` on `host`, counted."""
    with imap(lab, host, user) as client:
        status, _ = client.select(f'"{mailbox}"', readonly=True)
        if status != "OK":
            return Counter()
        criteria = ("SUBJECT", f'"{prefix}-"') if prefix else ("ALL",)
        _, data = client.search(None, *criteria)
        numbers = data[0].split() if data and data[0] else []
        found: Counter[str] = Counter()
        for start in range(0, len(numbers), 200):
            chunk = b",".join(numbers[start : start + 200]).decode()
            _, fetched = client.fetch(chunk, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for part in fetched:
                if isinstance(part, tuple):
                    found[part[1].decode().split(":", 1)[1].strip()] += 1
        return found


def delete_all(lab: LabState, host: str, mailbox: str = "INBOX", user: str = ALICE) -> int:
    """What a user does in her mail client: mark everything deleted, expunge."""
    with imap(lab, host, user) as client:
        _, data = client.select(f'"{mailbox}"')
        count = int(data[0] or 0)
        if count:
            client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            client.expunge()
        return count


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def on_host(host: str, script: str) -> str:
    proc = control.exec_in(host, ["sh", "-c", script], capture=True)
    assert proc.returncode == 0, f"{host}: {script}: {proc.stderr}"
    return str(proc.stdout)


def tamper_with_repository() -> int:
    """An attacker on the backup host flips bytes all through every data pack; returns how
    many packs were touched. The original is kept aside for `untamper`."""
    out = on_host("backup", f"rm -rf /root/repo.orig && cp -a {REPO} /root/repo.orig && "
                  f"n=0; for f in $(find {REPO}/data -type f); do "
                  "size=$(stat -c %s $f); off=64; while [ $off -lt $size ]; do "
                  "printf Z | dd of=$f bs=1 seek=$off conv=notrunc 2>/dev/null; "
                  "off=$((off + 256)); done; n=$((n + 1)); done; echo $n")  # fmt: skip
    return int(out.strip().splitlines()[-1])


def untamper() -> None:
    on_host("backup", f"if [ -d /root/repo.orig ]; then rm -rf {REPO} && "
            f"mv /root/repo.orig {REPO}; fi")  # fmt: skip


def settle_replication(lab: LabState, timeout: float = 120.0) -> None:
    """Both hosts hold the same mailboxes (stuck sessions ended, users resynced, as the
    running controller would): a long sync (a restored folder) holds the locks a
    backup's staging needs."""
    converge_mail_pair([lab.ssh_target(h) for h in ("mx1", "mx2")], timeout)
