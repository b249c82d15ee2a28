"""Lab hosts as systemd-nspawn containers: real systemd as PID 1, like production.

The machine's own systemd is not PID 1 here and installing systemd-container would upgrade
it, so systemd-nspawn is taken from its .deb (with the matching libsystemd-shared) into the
cache and run from there. Each container gets its own cgroup in every hierarchy before it
starts: without that, two containers' systemd units collide ("Failed to attach to cgroup").
The same cgroups let us find every process of a host (to crash it or tear it down) and
freeze it.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mxlab.procs import alive, run, signal_all, wait_gone
from mxlab.topology import LAB_NAME
from orchestrator.errors import LabError

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Hierarchies a container is placed in, when present (cgroup v1 hybrid layout here).
HIERARCHIES = ("systemd", "unified", "freezer")
LIB_SUBDIR = "usr/lib/x86_64-linux-gnu/systemd"


@dataclass(frozen=True)
class Nspawn:
    binary: Path
    libdir: Path

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_LIBRARY_PATH": str(self.libdir),
        }


def fetch_nspawn(cache: Path) -> Nspawn:
    """systemd-nspawn and its shared library, unpacked from Debian's packages (cached)."""
    dest = cache / "nspawn"
    binary, libdir = dest / "root/usr/bin/systemd-nspawn", dest / "root" / LIB_SUBDIR
    if (dest / ".complete").exists():
        return Nspawn(binary, libdir)
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "debs").mkdir(parents=True)
    debs = shlex.quote(str(dest / "debs"))
    run(
        ["sh", "-c", f"cd {debs} && apt-get download -q systemd-container libsystemd-shared"],
        what="downloading systemd-container (for systemd-nspawn)",
        fix="run `apt-get update` and check the machine's apt sources",
    )
    for deb in (dest / "debs").glob("*.deb"):
        run(["dpkg-deb", "-x", str(deb), str(dest / "root")], what=f"unpacking {deb.name}")
    if not binary.exists():
        raise LabError(f"systemd-nspawn missing from the unpacked packages in {dest}")
    (dest / ".complete").touch()
    return Nspawn(binary, libdir)


def cgroup_dirs(host: str) -> list[Path]:
    return [CGROUP_ROOT / h / LAB_NAME / host for h in HIERARCHIES if (CGROUP_ROOT / h).is_dir()]


def check_cgroups() -> None:
    if not (CGROUP_ROOT / "systemd").is_dir() and not (CGROUP_ROOT / "cgroup.procs").exists():
        raise LabError(
            "no usable cgroup hierarchy under /sys/fs/cgroup: the lab needs cgroups "
            "(mount cgroup2 or the systemd named hierarchy)"
        )


def host_pids(host: str) -> list[int]:
    """Every process of a lab host: all cgroups under its directory, in every hierarchy."""
    pids: set[int] = set()
    for top in cgroup_dirs(host):
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return sorted(p for p in pids if alive(p))


def start(
    nspawn: Nspawn,
    *,
    host: str,
    machine: str,
    fqdn: str,
    root: Path,
    netns: str,
    binds_ro: dict[str, str],
    log_path: Path,
    unified_cgroups: bool = False,
) -> int:
    """Boot a container on `root` inside network namespace `netns`; return nspawn's pid.

    `unified_cgroups`: give the container a pure cgroup v2 tree. systemd 256 and later
    (Debian 13) refuse to boot on the hybrid v1 layout this machine has."""
    dirs = cgroup_dirs(host)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)

    def enter_cgroups() -> None:  # runs in the child between fork and exec
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    argv = [
        str(nspawn.binary),
        "--quiet",
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={root}",
        f"--machine={machine}",
        f"--hostname={fqdn}",
        f"--network-namespace-path=/run/netns/{netns}",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=passive",
        # The host's network namespace is its own, so it may manage it (nftables, links),
        # as a real machine's root can.
        "--capability=CAP_NET_ADMIN",
        *[f"--bind-ro={src}:{dst}" for src, dst in binds_ro.items()],
    ]
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **nspawn.env(),
                **({"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"} if unified_cgroups else {}),
            },
            start_new_session=True,
            preexec_fn=enter_cgroups,
        )
    log.debug("started %s as pid %d", host, proc.pid)
    return proc.pid


def stop(host: str, nspawn_pid: int | None, timeout: float = 8.0) -> None:
    """Power a host off cleanly (SIGTERM to nspawn), then kill whatever is left."""
    if nspawn_pid is not None and alive(nspawn_pid):
        thaw(host)
        os.kill(nspawn_pid, signal.SIGTERM)
        wait_gone([nspawn_pid], timeout)
    kill(host)


def kill(host: str) -> None:
    """Crash a host: SIGKILL every process it has, no shutdown."""
    thaw(host)  # a frozen process cannot die until thawed
    for _ in range(5):
        pids = host_pids(host)
        if not pids:
            return
        signal_all(pids, signal.SIGKILL)
        wait_gone(pids, 3.0)
    left = host_pids(host)
    if left:
        raise LabError(f"lab host {host}: processes {left} survived SIGKILL")


def remove_cgroups(host: str) -> None:
    for top in cgroup_dirs(host):
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            d.rmdir()
        top.rmdir()


def _freezer_state(host: str) -> Path | None:
    path = CGROUP_ROOT / "freezer" / LAB_NAME / host / "freezer.state"
    return path if path.exists() else None


def freeze(host: str) -> None:
    """Hang every process of a host (like a wedged kernel): they stay, but do nothing."""
    state = _freezer_state(host)
    if state is None:
        raise LabError(f"lab host {host} cannot be frozen: no v1 freezer cgroup for it")
    state.write_text("FROZEN")


def thaw(host: str) -> None:
    state = _freezer_state(host)
    if state is not None:
        state.write_text("THAWED")


def is_frozen(host: str) -> bool:
    state = _freezer_state(host)
    return state is not None and state.read_text().strip() != "THAWED"
