"""The lab's rolling upgrade from Debian 12 to 13 (bench/rolling_upgrade.py and its lab
test): the `mxctl upgrade` command line as an operator runs it, whose own OS step (apt
sources bookworm -> trixie, `apt-get full-upgrade` over SSH) reads the release the lab
offers its hosts first (`mxctl lab release trixie`, mxlab.release), and the way back to a
Debian 12 pair afterwards (a reinstall: the lab has no downgrade either).
"""

from __future__ import annotations

from pathlib import Path

from mxlab import control
from mxlab.controlled import MAIL_HOSTS, MXCTL
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.lab import lab_lock
from mxlab.recreate import recreate
from mxlab.release import Offered, offer_release
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
    return [MXCTL, "upgrade", "-i", LAB_INVENTORY, "--deploy", LAB_DEPLOY, "--to", suite,
            "--config", str(config)]  # fmt: skip


def offer(suite: str = "trixie") -> Offered:
    """The release the upgrade's apt reads, offered to both mail hosts."""
    with lab_lock(wait=True):
        return offer_release(suite)


def upgraded_in_place(host: str) -> bool:
    """dpkg's own log says apt upgraded Dovecot 2.3 where it was (not a reinstall)."""
    log = control.exec_in(host, ["cat", "/var/log/dpkg.log"], capture=True).stdout
    return any(" upgrade dovecot-core:" in line and " 1:2.3" in line for line in log.splitlines())


def reinstall_pair(suite: str = "bookworm") -> None:
    """Both mail hosts reinstalled on `suite` and deployed (every message on them gone)."""
    with lab_lock(wait=True):
        for host in MAIL_HOSTS:
            recreate(host, suite)
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise LabError(f"deploy after reinstalling on {suite} failed: {result.stderr[-1500:]}")
