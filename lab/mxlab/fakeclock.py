"""A step of one lab host's wall clock: `mxctl lab fault mx1 clock +90s` (`clock mx1 0`).

CLOCK_REALTIME is not namespaced (a time namespace offsets only the monotonic and boot
clocks), so the step is libfaketime's: the library is listed in the host's
/etc/ld.so.preload and its offset in /etc/faketimerc. Every process started in the host
afterwards reads the stepped time; a process that has the library loaded reads the file
again within libfaketime's 10 s cache, so a new step or `clock HOST 0` reaches it too.
Daemons started before the host's first step keep the true time until restarted, and
libfaketime offsets the monotonic clocks of its processes along with the wall clock.
sshd is left on the true time (a drop-in sets libfaketime's FAKETIME_SKIP_CMDS for it, and
sshd restarts at the first step to take it; its sessions live on): its seccomp sandbox
kills a preauth child that runs libfaketime's code (SIGSYS), so SSH would fail. Commands
run over SSH see the step.

The library comes from Debian's libfaketime package, fetched once with the machine's apt
into the lab cache and copied into the host: no image is rebuilt for it.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import tempfile
from pathlib import Path

from mxlab.hostfaults import host_root
from mxlab.procs import run
from mxlab.state import cache_dir, state_dir
from orchestrator.errors import LabError, UsageError

PACKAGED_LIB = "usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
LIB_IN_HOST = "/usr/local/lib/mxlab/libfaketime.so.1"
RC_FILE = "/etc/faketimerc"
SSHD_DROP_IN = "/etc/systemd/system/ssh.service.d/mxlab-faketime.conf"
PRELOAD = "/etc/ld.so.preload"
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_step(word: str) -> int:
    """Seconds from e.g. +90s, -2m, 1h, 0."""
    match = re.fullmatch(r"([+-]?\d+)([smhd]?)", word)
    if match is None:
        raise UsageError(
            f"clock takes a step such as +90s, -2m or 0 (back to the true time), got {word!r}"
        )
    return int(match.group(1)) * UNITS[match.group(2)]


def fetch_libfaketime() -> Path:
    """libfaketime.so.1 unpacked from Debian's package into the lab cache (once)."""
    dest = cache_dir() / "faketime"
    if (dest / PACKAGED_LIB).exists():
        return dest / PACKAGED_LIB
    cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".faketime-", dir=cache_dir()))
    try:
        run(
            ["sh", "-c", f"cd {shlex.quote(str(tmp))} && apt-get download -q libfaketime"],
            what="downloading libfaketime (for `mxctl lab fault HOST clock`)",
            fix="run `apt-get update` and check the machine's apt sources",
        )
        for deb in tmp.glob("*.deb"):
            run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], what=f"unpacking {deb.name}")
        if not (tmp / "root" / PACKAGED_LIB).exists():
            raise LabError(f"libfaketime package has no {PACKAGED_LIB}")
        with contextlib.suppress(OSError):  # fetched by another lab meanwhile: theirs serves
            (tmp / "root").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / PACKAGED_LIB


def _preload_lines(root: Path) -> list[str]:
    path = root / PRELOAD.lstrip("/")
    return path.read_text().splitlines() if path.exists() else []


def step(name: str, seconds: int) -> None:
    """Set the host's wall clock `seconds` away from the true time (0: the true time)."""
    root = host_root(name)
    rc, preload = root / RC_FILE.lstrip("/"), root / PRELOAD.lstrip("/")
    others = [line for line in _preload_lines(root) if line.strip() != LIB_IN_HOST]
    if seconds == 0:
        # The file first: processes with the library loaded go back to the true time.
        rc.unlink(missing_ok=True)
        if others:
            preload.write_text("\n".join(others) + "\n")
        else:
            preload.unlink(missing_ok=True)
        return
    lib = root / LIB_IN_HOST.lstrip("/")
    lib.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fetch_libfaketime(), lib)
    lib.chmod(0o644)
    rc.write_text(f"{seconds:+d}\n")
    stepped_already = LIB_IN_HOST in _preload_lines(root)
    preload.write_text("\n".join([*others, LIB_IN_HOST]) + "\n")
    if not stepped_already:
        _keep_sshd_on_true_time(name, root)


def _keep_sshd_on_true_time(name: str, root: Path) -> None:
    """sshd restarted with the library preloaded, so that it loads it in its skip mode (a
    listener started without it re-executes children that then fake time, and die)."""
    from mxlab import control  # control imports this module

    drop_in = root / SSHD_DROP_IN.lstrip("/")
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_text("[Service]\nEnvironment=FAKETIME_SKIP_CMDS=sshd\n")
    restart = "systemctl daemon-reload && systemctl restart ssh"
    proc = control.exec_in(name, ["sh", "-c", restart], capture=True)
    if proc.returncode != 0:
        raise LabError(f"restarting sshd on {name} failed: {proc.stderr.strip()}")


def offset(name: str) -> int:
    """The host's clock step in seconds (0 when none, or when its root is not mounted)."""
    rc = state_dir() / "hosts" / name / "root" / RC_FILE.lstrip("/")
    try:
        return int(rc.read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
