"""The lab's rolling upgrade from Debian 12 to 13 (bench/rolling_upgrade.py and its lab
test): the `mxctl upgrade` command line with the lab's stand-in for the OS upgrade, and the
way back to a Debian 12 pair afterwards.

The stand-in is `mxctl lab recreate HOST --suite trixie`: lab hosts cannot run apt's
release upgrade (no route out; the offline repository holds the deploy's packages, not a
whole release), so the host is reinstalled on trixie instead, as bare as a new machine.
"""

from __future__ import annotations

from pathlib import Path

from mxlab import control
from mxlab.controlled import MAIL_HOSTS, MXCTL
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.lab import lab_lock
from mxlab.recreate import recreate
from orchestrator.deploy import runner
from orchestrator.errors import LabError

RELEASE = ". /etc/os-release; echo $VERSION_CODENAME"


def pair_releases() -> dict[str, str]:
    """Mail host -> the Debian codename it runs now."""
    return {
        host: control.exec_in(host, ["sh", "-c", RELEASE], capture=True).stdout.strip()
        for host in MAIL_HOSTS
    }


def dovecot_version(host: str) -> str:
    out = control.exec_in(host, ["dovecot", "--version"], capture=True).stdout.split()
    return out[0] if out else "?"


def upgrade_command(config: Path, suite: str = "trixie") -> list[str]:
    recreate_on = f"{MXCTL} lab recreate {{host}} --suite {suite}"
    return [MXCTL, "upgrade", "-i", LAB_INVENTORY, "--deploy", LAB_DEPLOY, "--to", suite,
            "--os-upgrade-command", recreate_on, "--config", str(config)]  # fmt: skip


def reinstall_pair(suite: str = "bookworm") -> None:
    """Both mail hosts reinstalled on `suite` and deployed (every message on them gone)."""
    with lab_lock(wait=True):
        for host in MAIL_HOSTS:
            recreate(host, suite)
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise LabError(f"deploy after reinstalling on {suite} failed: {result.stderr[-1500:]}")
