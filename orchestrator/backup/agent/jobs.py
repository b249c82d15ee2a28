"""The agent's jobs: a scheduled backup, a restore into the live store, a restore drill."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import drillcheck, mailstore, restic
from .primary import current_role
from .settings import MAIL_STAGING, MANIFEST, SCRATCH, STAGING, STATE_FILE, AgentSettings


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_state() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    return data


def update_state(**changes: Any) -> dict[str, Any]:
    state = {**read_state(), **changes}
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    tmp.replace(STATE_FILE)
    return state


def run_backup(settings: AgentSettings, force: bool = False) -> dict[str, Any]:
    """The timer's job: stage every mailbox, snapshot staging + host files, prune."""
    role = current_role(settings.fqdn, settings.mx_domain)
    if not role.primary and not force:
        update_state(role="standby", role_why=role.why, last_skip=now().isoformat())
        return {"result": "skipped", "why": f"not the primary: {role.why}"}
    started = now()
    t0 = time.monotonic()
    try:
        restic.ensure_repository(settings)
        counts: dict[str, dict[str, int]] = {}
        for user in mailstore.users():
            root = MAIL_STAGING / user
            mailstore.stage(user, root)
            counts[user] = {
                name: sum(1 for _ in mailstore.maildir_files(root / name))
                for name in mailstore.maildir_mailboxes(root)
            }
        staged = time.monotonic() - t0
        MANIFEST.write_text(
            json.dumps(
                {"staged_at": int(started.timestamp()), "host": settings.fqdn, "mailboxes": counts},
                sort_keys=True,
            )
        )
        paths = [str(STAGING), *(p for p in settings.extra_paths if Path(p).exists())]
        summary = restic.backup(settings, paths, started.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
        pruned = restic.forget_and_prune(settings)
    except (restic.ResticError, mailstore.StoreError, OSError) as exc:
        update_state(
            role="primary",
            last_attempt={"time": started.isoformat(), "ok": False, "error": str(exc)},
        )
        return {"result": "failed", "error": str(exc)}
    good = {
        "time": started.isoformat(),
        "ok": True,
        "snapshot": summary.get("snapshot_id", "")[:8],
        "seconds": round(time.monotonic() - t0, 2),
        "staging_seconds": round(staged, 2),
        "messages": sum(sum(m.values()) for m in counts.values()),
        "files_new": summary.get("files_new", 0),
        "files_changed": summary.get("files_changed", 0),
        "bytes_added": summary.get("data_added", 0),
        "bytes_total": summary.get("total_bytes_processed", 0),
        "pruned": pruned,
    }
    update_state(
        role="primary",
        role_why=role.why,
        last_attempt=good,
        last_good=good,
        interval_s=settings.interval_s,
        max_age_s=settings.max_age_s,
    )
    return {"result": "ok", **good}


def find_snapshot(settings: AgentSettings, at: str) -> dict[str, Any]:
    """The newest snapshot taken at or before `at` (ISO time, or 'latest', or an id)."""
    snaps = restic.snapshots(settings)
    if not snaps:
        raise LookupError("the repository holds no snapshot of this pair")
    if at == "latest":
        return snaps[-1]
    for snap in snaps:
        if snap["short_id"] == at or snap["id"].startswith(at):
            return snap
    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise LookupError(f"--at {at!r}: not an ISO time, 'latest' or a snapshot id") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    earlier = [s for s in snaps if dt.datetime.fromisoformat(s["time"]) <= when]
    if not earlier:
        raise LookupError(f"no snapshot at or before {at} (the oldest is {snaps[0]['time']})")
    return earlier[-1]


def _restore_user(
    settings: AgentSettings, snapshot: str, user: str, scratch: Path, mailbox: str | None
) -> tuple[Path, list[str]]:
    root = MAIL_STAGING / user
    include = str(root / mailbox) if mailbox else str(root)
    errors = restic.restore(settings, snapshot, scratch, [include])
    return scratch / str(root).lstrip("/"), errors


def restore(
    settings: AgentSettings, user: str, mailbox: str | None, at: str, into: str | None
) -> dict[str, Any]:
    """Restore a user's mailbox (or all of them) into the live store; a second run imports
    nothing new (messages already in the destination are dropped first)."""
    snap = find_snapshot(settings, at)
    parent = into if into is not None else "Restored-" + snap["time"][:16].replace(":", "")
    mailstore.vmail_dir(SCRATCH)
    scratch = Path(tempfile.mkdtemp(prefix="restore-", dir=SCRATCH))
    sep = mailstore.separator()
    t0 = time.monotonic()
    try:
        root, errors = _restore_user(settings, snap["short_id"], user, scratch, mailbox)
        if errors:
            return {"result": "failed", "snapshot": snap["short_id"], "errors": errors}
        if not root.is_dir():
            raise LookupError(f"snapshot {snap['short_id']} holds no mail of {user}")
        mailstore.chown_tree(scratch)
        names = mailstore.maildir_mailboxes(root)
        if mailbox is not None and mailbox not in names:
            raise LookupError(f"snapshot {snap['short_id']} holds no mailbox {mailbox!r} of {user}")
        done = []
        for name in [mailbox] if mailbox else names:
            dest = f"{parent}{sep}{name}" if parent else name
            present = Counter(k for k, _ in mailstore.live_messages(user, dest))
            kept, dropped = mailstore.drop_already_present(root / name, present)
            if kept:
                mailstore.import_mailbox(user, root, name, parent)
            done.append({"mailbox": name, "into": dest, "imported": kept, "already_there": dropped})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "result": "ok",
        "snapshot": snap["short_id"],
        "snapshot_time": snap["time"],
        "user": user,
        "mailboxes": done,
        "seconds": round(time.monotonic() - t0, 2),
    }


def _epoch(text: str) -> int:
    """restic's snapshot time (nanoseconds, Z or offset) as Unix seconds."""
    trimmed = re.sub(r"\.\d+", "", text).replace("Z", "+00:00")
    return int(dt.datetime.fromisoformat(trimmed).timestamp())


def snapshot_contents(
    settings: AgentSettings, snap: dict[str, Any]
) -> tuple[dict[str, dict[str, int | None]], int, str | None]:
    """(user -> mailbox -> messages it holds, when staging began, a problem): from the
    backup's manifest, else from the snapshot's tree (counts unknown) and the problem."""
    try:
        manifest = json.loads(restic.dump(settings, snap["short_id"], str(MANIFEST)))
        return manifest["mailboxes"], int(manifest["staged_at"]), None
    except (restic.ResticError, ValueError, KeyError) as exc:
        problem = f"the backup's manifest cannot be read: {exc}"
    boxes: dict[str, dict[str, int | None]] = {}
    for path in restic.directories(settings, snap["short_id"], str(MAIL_STAGING)):
        parts = Path(path).relative_to(MAIL_STAGING).parts
        if len(parts) >= 3 and parts[-1] == "cur":
            boxes.setdefault(parts[0], {})["/".join(parts[1:-1])] = None
    return boxes, _epoch(snap["time"]), problem


def restore_host(settings: AgentSettings, at: str) -> dict[str, Any]:
    """Disaster recovery: every user's every mailbox back under its own name."""
    snap = find_snapshot(settings, at)
    contents, _, _ = snapshot_contents(settings, snap)
    results = [restore(settings, user, None, snap["short_id"], "") for user in sorted(contents)]
    ok = all(r["result"] == "ok" for r in results)
    return {"result": "ok" if ok else "failed", "snapshot": snap["short_id"], "users": results}


def drill(settings: AgentSettings, at: str, size: int, seed: int) -> dict[str, Any]:
    """Restore a sample of mailboxes into scratch and compare them with the live store."""
    t0 = time.monotonic()
    snap = find_snapshot(settings, at)
    contents, staged_at, problem = snapshot_contents(settings, snap)
    everything = [(u, m) for u, boxes in contents.items() for m in boxes]
    chosen = drillcheck.sample(everything, size, seed)
    mailstore.vmail_dir(SCRATCH)
    verdicts = []
    for user, mailbox in chosen:
        scratch = Path(tempfile.mkdtemp(prefix="drill-", dir=SCRATCH))
        try:
            root, errors = _restore_user(settings, snap["short_id"], user, scratch, mailbox)
            backup = (
                mailstore.maildir_keys(root / mailbox) if (root / mailbox).is_dir() else Counter()
            )
            live = mailstore.live_messages(user, mailbox)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        verdicts.append(
            drillcheck.verdict(
                user,
                mailbox,
                contents[user][mailbox],
                backup,
                live,
                staged_at,
                errors,
            )
        )
    failed = [v for v in verdicts if not v.ok]
    result = {
        "result": "failed" if failed or problem else "passed",
        "time": now().isoformat(),
        "snapshot": snap["short_id"],
        "snapshot_time": snap["time"],
        "sampled": len(verdicts),
        "of": len(everything),
        "messages_compared": sum(v.restored for v in verdicts),
        "failed_mailboxes": [f"{v.user}/{v.mailbox}" for v in failed],
        "mailboxes": [v.as_dict() for v in verdicts],
        "seconds": round(time.monotonic() - t0, 2),
    }
    if problem:
        result["why"] = problem
    update_state(last_drill={k: v for k, v in result.items() if k != "mailboxes"})
    return result
