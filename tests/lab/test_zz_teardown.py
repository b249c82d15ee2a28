"""`mxctl lab down` leaves nothing behind; a failing `lab up` leaves nothing either.

Marked lab_teardown: conftest runs these after every other test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mxlab import lab as lab_ops
from mxlab.state import LabState, state_dir
from mxlab.topology import BRIDGE, LAB_NAME, VETH_PREFIX

pytestmark = [pytest.mark.lab, pytest.mark.lab_teardown]


def _leftovers() -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"{LAB_NAME}-")
    ]
    links = [p.name for p in Path("/sys/class/net").iterdir()]
    found += [f"link {n}" for n in links if n == BRIDGE or n.startswith(VETH_PREFIX)]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    inside = str(state_dir()) + "/"
    found += [f"mount {m.split()[4]}" for m in mounts if m.split()[4].startswith(inside)]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{LAB_NAME}")]
    for pid in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            status = (pid / "status").read_text()
            cgroups = (pid / "cgroup").read_text()
        except OSError:
            continue
        state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
        if state != "Z" and f"/{LAB_NAME}/" in cgroups:
            found.append(f"process {pid.name} in the lab's cgroups")
    return found


def _mxctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_lab_down_removes_every_namespace_mount_and_process(lab: LabState) -> None:
    proc = _mxctl("lab", "down")
    assert proc.returncode == 0, proc.stderr
    assert _leftovers() == []
    assert not lab_ops.is_up()
    assert not state_dir().exists()


def test_lab_down_when_down_is_harmless() -> None:
    proc = _mxctl("lab", "down")
    assert proc.returncode == 0, proc.stderr
    assert _leftovers() == []


def test_failed_build_reports_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    # A mirror that refuses connections makes debootstrap fail (in a fresh, empty cache).
    proc = _mxctl(
        "lab", "up", "--mirror", "http://127.0.0.1:9/debian",
        env={"MXCTL_LAB_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 1
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("mxctl: error:")]
    assert len(error_lines) == 1 and "debootstrap" in error_lines[0], proc.stderr
    assert _leftovers() == []


def test_not_root_is_a_one_line_error() -> None:
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "orchestrator.cli.main", "lab", "up"],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "mxctl: error: the lab needs root (network namespaces, mounts): run as root"
    )
