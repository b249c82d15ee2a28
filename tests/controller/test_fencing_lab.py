"""Fencing on a real lab host: client ports reject, SSH and replication stay, reboot-proof."""

from __future__ import annotations

import socket
import time

import pytest
from mxlab import control
from mxlab.state import LabState

from orchestrator.controller.fencing import fence, is_fenced, unfence
from orchestrator.remote import SshAccess

pytestmark = pytest.mark.lab

LISTENER = "mxctl-test-listener"


def _connect(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=2):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error: {exc}"


def _listen(host: str, *ports: int) -> None:
    for port in ports:
        control.exec_in(host, ["systemctl", "stop", f"{LISTENER}-{port}"], capture=True)
        control.exec_in(
            host,
            ["systemd-run", f"--unit={LISTENER}-{port}", "nc", "-lk", "0.0.0.0", str(port)],
            capture=True,
        )


def _wait_open(address: str, port: int) -> str:
    deadline = time.monotonic() + 10
    while (state := _connect(address, port)) != "open" and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


def test_fence_rejects_clients_keeps_ssh_and_survives_reboot(lab: LabState) -> None:
    sender = lab.host("sender")
    install = control.exec_in(
        "sender",
        ["sh", "-c", "apt-get update -qq && apt-get install -y -qq nftables"],
        capture=True,
    )
    assert install.returncode == 0, install.stderr
    target = SshAccess(lab.ssh_user, lab.ssh_key, lab.known_hosts).to("sender", sender.address)
    # 587 stands for a mail client port, 12345 for the doveadm replication port.
    _listen("sender", 587, 12345)
    assert _wait_open(sender.address, 587) == "open"
    try:
        result = fence(target, "test: fenced by test_fencing_lab")
        assert result.fenced
        assert _connect(sender.address, 587) == "refused"
        assert _connect(sender.address, 12345) == "open"
        assert _connect(sender.address, 22) == "open"
        assert is_fenced(target)
        control.fault("sender", "kill")
        control.fault("sender", "up")
        _listen("sender", 587)
        time.sleep(0.5)
        assert is_fenced(target)
        assert _connect(sender.address, 587) == "refused"
    finally:
        unfence(target)
    assert not is_fenced(target)
    _listen("sender", 587)
    assert _wait_open(sender.address, 587) == "open"
    for port in (587, 12345):
        control.exec_in("sender", ["systemctl", "stop", f"{LISTENER}-{port}"], capture=True)


def test_fencing_an_unreachable_host_reports_it(lab: LabState) -> None:
    target = SshAccess(lab.ssh_user, lab.ssh_key, lab.known_hosts).to("ghost", "10.254.77.99")
    result = fence(target, "test", timeout=1)
    assert not result.fenced and "unreachable" in result.detail
