"""An operator's view: mxctl installed from its wheel, run from a directory that holds
nothing but an inventory, deploys the lab pair. No checkout, no lab package, no
group_data: the deploys and templates come from the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from mxlab import inventory as labinv

from tests.deploy.conftest import DeployedLab

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def _run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_wheel_in_a_fresh_venv_deploys_from_an_inventory_only_directory(
    deployed: DeployedLab, tmp_path: Path
) -> None:
    wheels, venv, site = tmp_path / "wheels", tmp_path / "venv", tmp_path / "site"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(REPO)],
        cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    assert _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path).returncode == 0
    (wheel,) = wheels.glob("mxctl-*.whl")
    install = _run([str(venv / "bin/pip"), "install", "--quiet", "--no-deps", str(wheel)], tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]
    # mxctl's dependencies (pyinfra, paramiko, ...) from the test venv's site-packages, as a
    # plain path: its .pth files (the editable mxctl and mxlab) are not processed from there.
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    venv_site = Path(_run([str(venv / "bin/python"), "-c", purelib], tmp_path).stdout.strip())
    (venv_site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    site.mkdir()
    labinv.write_standalone(site / "inventory.py")
    where = _run(
        [str(venv / "bin/python"), "-c",
         "import orchestrator, mxctl_deploys, importlib.util as u; "
         "print(orchestrator.__file__, mxctl_deploys.__file__, u.find_spec('mxlab'))"],
        cwd=site,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.count(str(venv_site)) == 2, where.stdout  # the wheel, not the checkout
    assert where.stdout.strip().endswith("None"), where.stdout  # no lab package at all

    result = _run([str(venv / "bin/mxctl"), "deploy", "-i", "inventory.py", "--json"], cwd=site)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["failed"] == [] and report["failed_hosts"] == []
    # The pair is already deployed (by the checkout): the wheel's deploy agrees with it.
    assert report["changed"] == {}, report["changed"]
    assert sorted(os.listdir(site)) == ["inventory.py"]  # nothing written next to it
