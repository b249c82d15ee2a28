"""The live store through doveadm, and the Maildir copies the backups are made of.

Why the staged copy is consistent while mail flows: `doveadm backup` reads each mailbox
through Dovecot itself, under Dovecot's own locks and index, exactly as replication does,
so every message it copies is complete (LMTP delivers to a temporary file and links it in
whole) and each mailbox is copied as of one index state. Only this agent writes the
staging store, and restic reads it afterwards, so the snapshot is exactly the staged copy.
Every message saved before staging began is in it; one arriving during staging may or may
not be (the next run takes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

VMAIL_UID = 5000
VMAIL_GID = 5000
# Dovecot's own files in a Maildir copy; restores drop them so Dovecot reindexes the messages.
INDEX_FILES = ("dovecot-uidlist", "dovecot-keywords", "dovecot-uidvalidity")


class StoreError(Exception):
    pass


def doveadm_bytes(*args: str, timeout: float = 3600) -> bytes:
    proc = subprocess.run(["doveadm", *args], capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        error = proc.stderr.decode("utf-8", "replace").strip()
        raise StoreError(f"doveadm {args[0]} failed (rc {proc.returncode}): {error}")
    return proc.stdout


def doveadm(*args: str, timeout: float = 3600) -> str:
    return doveadm_bytes(*args, timeout=timeout).decode("utf-8", "replace")


def users() -> list[str]:
    return sorted(line.strip() for line in doveadm("user", "*").splitlines() if line.strip())


def location(root: Path) -> str:
    """A Maildir location with one directory per mailbox, named as the mailbox is."""
    return f"maildir:{root}:LAYOUT=fs:INBOX={root}/INBOX"


def vmail_dir(path: Path) -> Path:
    """A directory only the mail storage user (whom doveadm runs as) can use."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(path, VMAIL_UID, VMAIL_GID)
    return path


LOCK_RETRIES = 3
LOCK_RETRY_PAUSE = 15.0


def stage(user: str, root: Path) -> None:
    """Make `root` an exact copy of the user's mailboxes (incremental: only changes move).

    A mailbox being replicated at that moment holds its sync lock; doveadm waits 30 s for
    it, and the copy is tried again a few times before the backup fails (and alerts)."""
    for d in (root.parent.parent, root.parent, root):
        vmail_dir(d)
    for attempt in range(LOCK_RETRIES):
        try:
            doveadm("backup", "-u", user, location(root))
            return
        except StoreError as exc:
            if "Failed to lock mailbox" not in str(exc) or attempt == LOCK_RETRIES - 1:
                raise
            time.sleep(LOCK_RETRY_PAUSE)


def _doveconf(key: str) -> str:
    proc = subprocess.run(["doveconf", "-h", key], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def separator() -> str:
    """The hierarchy separator of the user's namespace: as configured, else the layout's
    default (`/` for dbox and LAYOUT=fs, `.` for Maildir++)."""
    configured = _doveconf("namespace/inbox/separator")
    if configured:
        return configured
    location = _doveconf("mail_location")
    return "/" if "dbox:" in location or "LAYOUT=fs" in location else "."


def message_key(raw: bytes) -> str:
    """A message's identity for restores and drills: SHA-256 of its bytes, line ends as LF
    and trailing line ends dropped (Dovecot stores LF; doveadm's output may add one)."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n").rstrip(b"\n")).hexdigest()


def maildir_files(mailbox_dir: Path) -> Iterator[Path]:
    for sub in ("cur", "new"):
        d = mailbox_dir / sub
        if d.is_dir():
            yield from sorted(p for p in d.iterdir() if p.is_file())


def maildir_mailboxes(root: Path) -> list[str]:
    """Mailbox names under a staged/restored user root (directories holding cur/)."""
    names = []
    for dirpath, dirnames, _ in os.walk(root):
        if "cur" in dirnames:
            names.append(str(Path(dirpath).relative_to(root)))
    return sorted(names)


def maildir_keys(mailbox_dir: Path) -> Counter[str]:
    return Counter(message_key(p.read_bytes()) for p in maildir_files(mailbox_dir))


_RECORD = re.compile(rb"^uid: (\d+)\ntext:\n", re.S)


def _pager_texts(raw: bytes) -> dict[int, bytes] | None:
    """{uid: message text} from `doveadm -f pager fetch "uid text"` (with two fields or
    more, records are separated by a form feed line); None when the output does not split
    cleanly (a message holding such a line)."""
    if not raw:
        return {}
    texts: dict[int, bytes] = {}
    for record in raw.split(b"\f\n"):
        match = _RECORD.match(record)
        if match is None:
            return None
        texts[int(match.group(1))] = record[match.end() :]
    return texts


def live_messages(user: str, mailbox: str) -> list[tuple[str, int]]:
    """(key, saved unix time) of every message in a live mailbox; [] when it does not exist.

    Raw bytes, never doveadm's JSON: JSON output replaces 8-bit bytes, which would make an
    8-bit message never match its own backup."""
    try:
        listing = doveadm(
            "-f", "json", "fetch", "-u", user, "uid date.saved.unixtime", "mailbox", mailbox
        )
    except StoreError as exc:
        if "doesn't exist" in str(exc) or "not found" in str(exc).lower():
            return []
        raise
    rows = json.loads(listing or "[]")
    if not rows:
        return []
    fetch = ("-f", "pager", "fetch", "-u", user, "uid text", "mailbox", mailbox)
    texts = _pager_texts(doveadm_bytes(*fetch))
    if texts is None or {int(r["uid"]) for r in rows} - set(texts):
        texts = {}
        for row in rows:  # one by one: slower, unambiguous
            one = doveadm_bytes(*fetch, "uid", str(row["uid"])).removesuffix(b"\f\n")
            match = _RECORD.match(one)
            texts[int(row["uid"])] = one[match.end() :] if match else one
    return [(message_key(texts[int(r["uid"])]), int(r["date.saved.unixtime"])) for r in rows]


def live_mailboxes(user: str) -> list[str]:
    return [ln.strip() for ln in doveadm("mailbox", "list", "-u", user).splitlines() if ln.strip()]


def chown_tree(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), VMAIL_UID, VMAIL_GID)
    os.chown(root, VMAIL_UID, VMAIL_GID)


def drop_already_present(mailbox_dir: Path, present: Counter[str]) -> tuple[int, int]:
    """Delete from a restored Maildir every message the destination already holds (as many
    times as it holds it); (kept, dropped). Makes a second restore import nothing."""
    remaining = Counter(present)
    kept = dropped = 0
    for path in maildir_files(mailbox_dir):
        key = message_key(path.read_bytes())
        if remaining[key] > 0:
            remaining[key] -= 1
            path.unlink()
            dropped += 1
        else:
            kept += 1
    for name in INDEX_FILES:
        (mailbox_dir / name).unlink(missing_ok=True)
    for index in mailbox_dir.glob("dovecot.index*"):
        index.unlink()
    return kept, dropped


def import_mailbox(user: str, source_root: Path, mailbox: str, parent: str) -> None:
    """Import one restored mailbox into `parent`/`mailbox` (parent "": the same name)."""
    doveadm("import", "-u", user, "-s", location(source_root), parent, "mailbox", mailbox)
