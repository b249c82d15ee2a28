"""mxctl_deploys.controller on a lab host: mxctl installed offline, a running systemd service."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from mxlab import control
from mxlab.deploying import LAB_CONTROLLER_INVENTORY
from mxlab.state import LabState

from orchestrator.deploy import runner

pytestmark = pytest.mark.lab

INVENTORY = LAB_CONTROLLER_INVENTORY
DEPLOY = runner.CONTROLLER_DEPLOY
HEALTH_ON_LOOPBACK = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:8426/health', timeout=2).read().decode())"
)


def test_controller_installs_runs_and_redeploys_without_change(deployed_pair: LabState) -> None:
    lab = deployed_pair
    first = runner.run_deploy(INVENTORY, DEPLOY, limit=("sender",))
    assert first.ok, f"{first.failed()}\n{first.stderr[-3000:]}"
    try:
        active = control.exec_in("sender", ["systemctl", "is-active", "mxctl-watch"], capture=True)
        assert active.stdout.strip() == "active"
        # The API listens on loopback only: reachable on the host, refused from outside.
        health_cmd = ["python3", "-c", HEALTH_ON_LOOPBACK]
        deadline = time.monotonic() + 30
        health = control.exec_in("sender", health_cmd, capture=True)
        while health.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # the service is still starting (importing, binding)
            health = control.exec_in("sender", health_cmd, capture=True)
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["ok"] is True
        listening = control.exec_in("sender", ["ss", "-Hltn", "sport = :8426"], capture=True)
        assert [line.split()[3] for line in listening.stdout.splitlines()] == ["127.0.0.1:8426"]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{lab.host('sender').address}:8426/health", timeout=2)
        status = control.exec_in(
            "sender",
            ["/opt/mxctl/venv/bin/mxctl", "status", "--json", "--config", "/etc/mxctl/mxctl.toml"],
            capture=True,
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["primary"] == "mx1.example.test"
        mode = control.exec_in("sender", ["stat", "-c", "%a", "/etc/mxctl/secrets/tsig.key"],
                               capture=True)  # fmt: skip
        assert mode.stdout.strip() == "600"
        second = runner.run_deploy(INVENTORY, DEPLOY, limit=("sender",))
        assert second.ok
        assert second.changed("sender") == [], second.changed("sender")
    finally:
        # A second controller must not act on the lab while other tests inject faults.
        control.exec_in("sender", ["systemctl", "disable", "--now", "mxctl-watch"], capture=True)
