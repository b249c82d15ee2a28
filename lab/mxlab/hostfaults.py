"""Faults inside one lab host: a host that lets you in but cannot act.

`cannot-act`: SSH authentication succeeds (sshd untouched), but every command fails as on
a host out of processes: root's login shell, which sshd runs every command with, becomes
a script that prints bash's fork error and exits 1. The shell root had is kept in the host
and put back by `can-act`.
"""

from __future__ import annotations

from pathlib import Path

from mxlab.state import state_dir
from orchestrator.errors import LabError

FORK_ERROR = "-bash: fork: Resource temporarily unavailable"
CANNOT_ACT_SHELL = "/usr/local/sbin/mxlab-cannot-act"
SAVED_SHELL = "/var/lib/mxlab/root-shell"


def host_root(name: str) -> Path:
    """The host's root filesystem as the machine sees it (mounted while the host runs)."""
    root = state_dir() / "hosts" / name / "root"
    if not (root / "etc/passwd").exists():
        raise LabError(f"lab host {name} has no root mounted: `mxctl lab fault {name} up`")
    return root


def _root_shell(root: Path) -> str:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "root":
            return fields[6]
    raise LabError(f"{root}/etc/passwd has no root entry")


def _set_root_shell(root: Path, shell: str) -> None:
    # Rewritten in place (same inode, as usermod leaves it for the host's own readers).
    passwd = root / "etc/passwd"
    lines = []
    for line in passwd.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "root":
            fields[6] = shell
        lines.append(":".join(fields))
    passwd.write_text("\n".join(lines) + "\n")


def cannot_act(name: str) -> None:
    root = host_root(name)
    script = root / CANNOT_ACT_SHELL.lstrip("/")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\necho '{FORK_ERROR}' >&2\nexit 1\n")
    script.chmod(0o755)
    current = _root_shell(root)
    if current != CANNOT_ACT_SHELL:
        saved = root / SAVED_SHELL.lstrip("/")
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(current + "\n")
    _set_root_shell(root, CANNOT_ACT_SHELL)


def can_act(name: str) -> None:
    root = host_root(name)
    if _root_shell(root) != CANNOT_ACT_SHELL:
        return
    saved = root / SAVED_SHELL.lstrip("/")
    shell = saved.read_text().strip() if saved.exists() else "/bin/bash"
    _set_root_shell(root, shell or "/bin/bash")
    saved.unlink(missing_ok=True)


def acts(name: str) -> bool:
    """False while `cannot-act` is in force (True for a host whose root is not mounted)."""
    root = state_dir() / "hosts" / name / "root"
    return not (root / "etc/passwd").exists() or _root_shell(root) != CANNOT_ACT_SHELL
