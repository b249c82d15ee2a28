"""Faults inside one lab host: a host that lets you in but cannot act, a full disk.

`cannot-act`: SSH authentication succeeds (sshd untouched), but every command fails as on
a host out of processes: root's login shell, which sshd runs every command with, becomes
a script that prints bash's fork error and exits 1. The shell root had is kept in the host
and put back by `can-act`.

`disk-full`: a mail host's root lives on a disk of its own (hostfs.mount_disk); a ballast
file inside the host takes every free block, so Postfix, Dovecot and everything else see
ENOSPC on their real paths with their data intact. `disk-free` deletes the ballast.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mxlab import hostfs
from mxlab.state import state_dir
from mxlab.topology import host_spec
from orchestrator.errors import LabError, UsageError

FORK_ERROR = "-bash: fork: Resource temporarily unavailable"
CANNOT_ACT_SHELL = "/usr/local/sbin/mxlab-cannot-act"
SAVED_SHELL = "/var/lib/mxlab/root-shell"
BALLAST = "/var/lib/mxlab/ballast"


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


def _own_disk(name: str) -> Path:
    if host_spec(name).role != "mail":
        raise UsageError(f"a full disk is for the mail hosts (mx1, mx2), not {name}")
    disk = hostfs.disk_dir(state_dir() / "hosts" / name)
    if not hostfs.mounted(disk):
        raise LabError(
            f"lab host {name} has no disk of its own (only mail hosts have one, and a lab "
            f"built before they did has none): `mxctl lab recreate {name}` gives it one"
        )
    return disk


def fill_disk(name: str) -> int:
    """Take every free block of the host's disk; returns the bytes taken."""
    disk, root = _own_disk(name), host_root(name)
    ballast = root / BALLAST.lstrip("/")
    ballast.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        free = os.statvfs(disk)
        wanted = free.f_bavail * free.f_frsize
        while wanted > 1 << 20:  # the extents' own blocks come off the free space too
            try:
                os.posix_fallocate(fd, os.fstat(fd).st_size, wanted)
                break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                wanted //= 2
        block = b"\0" * 4096
        while True:  # the last blocks, one at a time
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def free_disk(name: str) -> None:
    (host_root(name) / BALLAST.lstrip("/")).unlink(missing_ok=True)


def disk_is_full(name: str) -> bool:
    return (state_dir() / "hosts" / name / "root" / BALLAST.lstrip("/")).exists()
