"""Bench: backup time and size for N messages (first and incremental), restore time of one
mailbox, and the RPO (the configured backup interval), on the lab.

N messages (default 10,000; 1-8 KB bodies, as mail is) are imported into one folder of
alice's on the primary with `doveadm import` (SMTP at 10/s would take 17 minutes); the
standby gets them by replication. Then:

- first backup: the staging store, the restic cache and the repository on the lab host
  `backup` are emptied first (DESTRUCTIVE for the lab's backups), so everything is new;
- incremental backup: after 1 % more messages arrive (the same folder);
- restore of that one mailbox (N + 1 % messages) into a new folder, with `mxctl backup
  restore`, and of the same again (nothing imported: the dedupe pass alone).

Sizes: what restic reports as added (compressed, encrypted) and `du` of the repository.
Run: .venv/bin/python bench/backup.py [--messages N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from mxlab.state import LabState, load_lab_state, state_dir

from orchestrator.remote import run_remote

USER = "alice@example.test"

# Runs on the primary: N messages into a Maildir, then one `doveadm import`.
MAKE_MESSAGES = r"""
import os, random, sys, time
n, start, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
root = "/var/tmp/bench-maildir"
os.makedirs(root + "/INBOX/cur", exist_ok=True); os.makedirs(root + "/INBOX/new", exist_ok=True)
os.makedirs(root + "/INBOX/tmp", exist_ok=True)
rng = random.Random(start)
words = "mail backup restore drill primary standby replica snapshot message folder".split()
for i in range(start, start + n):
    body = " ".join(rng.choice(words) for _ in range(rng.randint(150, 1200)))
    text = (f"From: bench@sender.example.test\nTo: {folder}@example.test\n"
            f"Subject: bench-{i:06d}\nMessage-ID: <bench-{i}@mxctl.test>\n\n{body}\n")
    with open(f"{root}/INBOX/cur/{int(time.time())}.{i}.bench:2,S", "w") as f:
        f.write(text)
os.system("chown -R vmail:vmail " + root)
"""


def ssh(lab: LabState, host: str, command: str, timeout: float = 3600) -> str:
    result = run_remote(lab.ssh_target(host), command, timeout)
    if result.exit_code != 0:
        sys.exit(f"{host}: {command[:80]}: rc {result.exit_code}: {result.stderr[-2000:]}")
    return result.stdout


def import_messages(lab: LabState, n: int, start: int, folder: str) -> float:
    """n messages into `folder`/INBOX of alice's on mx1; seconds taken."""
    t0 = time.monotonic()
    ssh(
        lab,
        "mx1",
        f"rm -rf /var/tmp/bench-maildir && python3 -c '{MAKE_MESSAGES}' {n} {start} {folder}",
    )
    ssh(
        lab,
        "mx1",
        f"doveadm import -u {USER} "
        "maildir:/var/tmp/bench-maildir:LAYOUT=fs:INBOX=/var/tmp/bench-maildir/INBOX "
        f"{folder} mailbox INBOX && rm -rf /var/tmp/bench-maildir",
    )
    return time.monotonic() - t0


def mxctl(*args: str) -> tuple[float, dict[str, Any]]:
    config = str(state_dir() / "mxctl.toml")
    argv = [
        sys.executable,
        "-m",
        "orchestrator.cli.main",
        "backup",
        *args,
        "--config",
        config,
        "--json",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(
            f"mxctl backup {' '.join(args)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return elapsed, json.loads(proc.stdout)


def repo_bytes(lab: LabState) -> int:
    return int(ssh(lab, "backup", "du -sb /srv/backup/repo | cut -f1").strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    lab = load_lab_state()
    n = args.messages
    folder = f"Bench{int(time.time())}"
    ssh(lab, "mx1", f"doveadm mailbox create -u {USER} {folder}")
    took = import_messages(lab, n, 0, folder)
    inner = f"{folder}/INBOX"
    print(f"{n} messages imported into {inner} in {took:.1f} s")

    print("emptying staging, restic cache and the repository (lab backups are discarded)")
    ssh(lab, "mx1", "rm -rf /var/lib/mxctl-backup/staging /var/cache/mxctl-backup/restic")
    ssh(lab, "backup", "rm -rf /srv/backup/repo/* /srv/backup/repo/.[!.]* 2>/dev/null; true")
    wall, first = mxctl("run")
    first_repo = repo_bytes(lab)
    print(
        f"first backup:       {wall:6.1f} s wall ({first['seconds']} s agent, staging "
        f"{first['staging_seconds']} s), {first['messages']} messages, "
        f"{int(first['bytes_added']) / 1e6:.1f} MB added, repository {first_repo / 1e6:.1f} MB"
    )

    more = max(1, n // 100)
    import_messages(lab, more, n, folder)
    wall, incr = mxctl("run")
    print(
        f"incremental (+{more}): {wall:6.1f} s wall ({incr['seconds']} s agent, staging "
        f"{incr['staging_seconds']} s), {int(incr['bytes_added']) / 1e6:.2f} MB added, "
        f"repository {repo_bytes(lab) / 1e6:.1f} MB"
    )

    wall, restored = mxctl(
        "restore",
        "--user",
        USER,
        "--mailbox",
        inner,
        "--at",
        "latest",
        "--into",
        f"{folder}-restored",
    )
    boxes = restored["mailboxes"]
    assert isinstance(boxes, list)
    print(
        f"restore one mailbox ({boxes[0]['imported']} messages): {wall:6.1f} s wall "
        f"({restored['seconds']} s agent)"
    )
    wall, again = mxctl(
        "restore",
        "--user",
        USER,
        "--mailbox",
        inner,
        "--at",
        "latest",
        "--into",
        f"{folder}-restored",
    )
    boxes = again["mailboxes"]
    assert isinstance(boxes, list) and boxes[0]["imported"] == 0
    print(
        f"same restore again (0 imported, {boxes[0]['already_there']} already there): "
        f"{wall:6.1f} s wall"
    )
    # The bench's mail goes again (replication removes it from the standby too); the
    # repository keeps it until retention prunes it.
    ssh(lab, "mx1", f"doveadm mailbox delete -u {USER} -r -s {folder} {folder}-restored")
    state = json.loads(ssh(lab, "mx1", "cat /var/lib/mxctl-backup/state.json"))
    print(
        f"RPO: {state['interval_s'] / 60:.0f} min (the configured interval; alert after "
        f"{state['max_age_s'] / 60:.0f} min without a good backup)"
    )


if __name__ == "__main__":
    main()
