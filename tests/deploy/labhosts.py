"""Run a command on a lab host over SSH, host key pinned by the lab's known_hosts."""

from __future__ import annotations

import subprocess

from orchestrator.lab.state import LabState


def ssh(lab: LabState, host: str, command: str) -> str:
    proc = subprocess.run(
        [
            "ssh",
            "-i",
            lab.ssh_key,
            "-o",
            f"UserKnownHostsFile={lab.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"{lab.ssh_user}@{lab.host(host).address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout
