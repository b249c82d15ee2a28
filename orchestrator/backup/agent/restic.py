"""restic, run with the repository's settings; errors carry restic's own message."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import CACHE_DIR, AgentSettings


class ResticError(Exception):
    pass


def _environ(settings: AgentSettings) -> dict[str, str]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "RESTIC_REPOSITORY": settings.repository,
        "RESTIC_PASSWORD_FILE": settings.password_file,
        "RESTIC_CACHE_DIR": str(CACHE_DIR / "restic"),
    }
    if settings.s3_env_file:
        for line in Path(settings.s3_env_file).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env[key] = value
    return env


def run(
    settings: AgentSettings, args: Sequence[str], check: bool = True, timeout: float = 3600
) -> subprocess.CompletedProcess[str]:
    argv = ["restic", *args]
    if settings.sftp_command:
        argv[1:1] = ["-o", f"sftp.command={settings.sftp_command}"]
    proc = subprocess.run(
        argv,
        env=_environ(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
        raise ResticError(f"restic {args[0]} failed (rc {proc.returncode}): " + " | ".join(detail))
    return proc


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def ensure_repository(settings: AgentSettings) -> str:
    """Create the repository unless it exists; 'created' or 'exists'."""
    probe = run(settings, ["cat", "config"], check=False, timeout=120)
    if probe.returncode == 0:
        return "exists"
    made = run(settings, ["init"], check=False, timeout=120)
    if made.returncode == 0:
        return "created"
    if "already" in made.stderr:  # the other host made it a moment ago
        return "exists"
    raise ResticError(f"restic init failed: {made.stderr.strip()}")


def snapshots(settings: AgentSettings) -> list[dict[str, Any]]:
    proc = run(settings, ["snapshots", "--json", "--host", settings.host_tag], timeout=300)
    data: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return sorted(data, key=lambda s: s["time"])


def backup(settings: AgentSettings, paths: Sequence[str], time_text: str) -> dict[str, Any]:
    """One snapshot of `paths` dated `time_text` (when staging began); restic's summary."""
    args = ["backup", "--json", "--host", settings.host_tag, "--tag", "mxctl", "--time", time_text]
    for pattern in settings.excludes:
        args += ["--exclude", pattern]
    proc = run(settings, [*args, *paths])
    summary = [m for m in json_lines(proc.stdout) if m.get("message_type") == "summary"]
    if not summary:
        raise ResticError("restic backup printed no summary")
    return summary[-1]


def forget_and_prune(settings: AgentSettings) -> str:
    if not settings.keep_flags:
        return "no retention configured"
    proc = run(
        settings,
        ["forget", "--prune", "--host", settings.host_tag, *settings.keep_flags],
        timeout=3600,
    )
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "pruned"


def restore(
    settings: AgentSettings, snapshot: str, target: Path, includes: Sequence[str]
) -> list[str]:
    """Restore `includes` of `snapshot` under `target`; restic's error lines (empty: clean).

    restic verifies every blob's MAC as it decrypts it: a tampered pack shows up here."""
    args = ["restore", snapshot, "--target", str(target)]
    for path in includes:
        args += ["--include", path]
    proc = run(settings, args, check=False)
    errors = [
        ln for ln in proc.stderr.splitlines() if ln.strip() and "ignoring error" in ln.lower()
    ]
    if proc.returncode != 0 and not errors:
        errors = [proc.stderr.strip() or f"restic restore exited {proc.returncode}"]
    return errors


def directories(settings: AgentSettings, snapshot: str, under: str) -> list[str]:
    """Every directory under `under` in the snapshot (from its tree, which restic also keeps
    in its local cache)."""
    proc = run(settings, ["ls", "--json", "--recursive", snapshot, under], timeout=600)
    return [
        str(node["path"])
        for node in json_lines(proc.stdout)
        if node.get("struct_type") == "node" and node.get("type") == "dir"
    ]


def dump(settings: AgentSettings, snapshot: str, path: str) -> str:
    return run(settings, ["dump", snapshot, path], timeout=600).stdout


def stats(settings: AgentSettings) -> dict[str, Any]:
    proc = run(settings, ["stats", "--json", "--mode", "raw-data"], timeout=600)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def environ_for_shell(settings: AgentSettings) -> dict[str, str]:
    """For `mxctl-backup restic ...`: restic with this host's settings, by hand."""
    return {**os.environ, **_environ(settings)}
