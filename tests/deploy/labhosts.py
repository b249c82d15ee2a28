"""Run a command on a lab host over SSH, host key pinned by the lab's known_hosts."""

from __future__ import annotations

from mxlab.state import LabState

from orchestrator.deploy.release import SUPPORTED, MailRelease
from orchestrator.remote import run_remote


def ssh(lab: LabState, host: str, command: str) -> str:
    result = run_remote(lab.ssh_target(host), command, timeout=30)
    assert result.exit_code == 0, f"{host}: {command}: exit {result.exit_code}: {result.stderr}"
    return result.stdout


def lab_release(lab: LabState) -> MailRelease:
    """The Debian release of the lab's mail hosts (bookworm unless built with --suite)."""
    return SUPPORTED[lab.extra.get("mail_suite", "bookworm")]
