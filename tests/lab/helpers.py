"""Small probes used by the lab tests: real TCP and SSH traffic, from the machine or a host."""

from __future__ import annotations

import socket

from mxlab import control
from mxlab.state import LabState

from orchestrator.remote import exec_remote


def tcp_connects(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def ssh_banner(address: str, timeout: float = 1.0) -> bytes:
    """The first bytes sshd sends; b"" when none arrive within `timeout` (a hung daemon)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64)
    except OSError:
        return b""


def host_reaches(src: str, address: str, port: int = 22) -> bool:
    """Whether lab host `src` can open a TCP connection to address:port (1 s timeout)."""
    proc = control.exec_in(src, ["nc", "-z", "-w", "1", address, str(port)], capture=True)
    return proc.returncode == 0


def ssh_run(state: LabState, host: str, command: str, known_hosts: str | None = None) -> str:
    """Run a command over SSH with strict host-key checking against the lab's known_hosts
    (paramiko's own exceptions propagate, so a test can tell a refused host key)."""
    return exec_remote(state.ssh_target(host, known_hosts), command, timeout=10).stdout.strip()
