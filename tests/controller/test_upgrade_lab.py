"""The rolling upgrade on the lab (issue 13): a running Debian 12 pair to Debian 13, one
host at a time, under steady mail: every accepted message delivered, none bounced, both
hosts on trixie with Dovecot 2.4 and mxctl-dsync, mail on mx1 again. The OS upgrade is
`mxctl upgrade`'s own: apt full-upgrade over SSH, in place, from the release the lab
offers its hosts first (`mxctl lab release trixie`, mxlab.release). Needs a bookworm lab
(the `make test` one); it puts the pair back on bookworm afterwards (a reinstall).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mxlab import control
from mxlab.controlled import ControlledLab, dump, mx_at, write_config
from mxlab.mailtraffic import SteadySender, subjects_on
from mxlab.rollingupgrade import (
    dovecot_version,
    offer,
    pair_releases,
    reinstall_pair,
    upgrade_command,
    upgraded_in_place,
)
from mxlab.state import LabState

pytestmark = pytest.mark.lab

OLD_TTL, LOW_TTL = 30, 5


@pytest.fixture
def bookworm_pair(deployed_pair: LabState, tmp_path: Path) -> Iterator[ControlledLab]:
    releases = pair_releases()
    assert releases == {"mx1": "bookworm", "mx2": "bookworm"}, (
        f"the rolling upgrade test needs a Debian 12 pair, the lab has {releases}"
    )
    path = write_config(deployed_pair, tmp_path, ttl=OLD_TTL)
    path.write_text(path.read_text() + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n")
    lab = ControlledLab(deployed_pair, tmp_path, path)
    lab.restore()
    try:
        print(offer("trixie").summary())
        yield lab
    finally:
        reinstall_pair("bookworm")  # the suite's other tests expect Debian 12 hosts
        lab.restore()


def test_rolling_upgrade_under_mail_loses_nothing(bookworm_pair: ControlledLab) -> None:
    lab = bookworm_pair
    traffic = SteadySender(lab.lab, f"rolling-{int(time.time())}", 3)
    traffic.start()
    try:
        proc = subprocess.run(upgrade_command(lab.config_path), capture_output=True, text=True,
                              timeout=1500)  # fmt: skip
    finally:
        traffic.stop.set()
        traffic.join()
    assert proc.returncode == 0, (
        f"{proc.stdout}\n{proc.stderr[-3000:]}\n{dump(lab.journal_events())}"
    )
    assert "upgrade done" in proc.stdout
    assert pair_releases() == {"mx1": "trixie", "mx2": "trixie"}
    assert all(upgraded_in_place(h) for h in ("mx1", "mx2")), "apt did not upgrade Dovecot"
    assert all(dovecot_version(h).startswith("2.4") for h in ("mx1", "mx2"))
    for host in ("mx1", "mx2"):
        active = control.exec_in(host, ["systemctl", "is-active", "mxctl-dsync"], capture=True)
        assert active.stdout.strip() == "active", host
    assert mx_at(lab.lab.host("ns1").address)[0] == "10 mx1.example.test."
    accepted = set(traffic.accepted)
    assert traffic.refused == 0 and len(accepted) > 100
    for host in ("mx1", "mx2"):  # mx1 serves; mx2 holds a replica (mxctl-dsync both sides)
        missing = accepted
        deadline = time.monotonic() + 120  # no queue flushed: deferred mail comes on retry
        while missing and time.monotonic() < deadline:
            missing = accepted - subjects_on(lab.lab, host, traffic.prefix)
            time.sleep(3)
        assert not missing, f"{len(missing)} of {len(accepted)} accepted never reached {host}"
    log = control.exec_in("sender", ["cat", "/var/log/postfix.log"], capture=True).stdout
    bounced = [line for line in log.splitlines() if "status=bounced" in line and "alice" in line]
    assert not bounced, bounced[:5]
