"""mxctl-dsync on a Dovecot 2.4 lab pair (`MXCTL_LAB_SUITE=trixie`): the INBOX GUID hazard.

The hazard seen on 2.4.1: a standby with its own INBOX (another GUID); a one-way `backup`
emptied it and the next two-way sync carried the deletions back, and the user's mail was
gone on both hosts. Here the same state is built for a user of its own, and mxctl-dsync
must refuse that user (sweep and prompt sync alike), alert naming them, report them to the
host-state probe, and leave every message and both GUIDs as they were.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator

import pytest
from mxlab.mailtraffic import CLIENT_NAME, Imaps
from mxlab.state import LabState
from mxlab.targets import lab_settings

from orchestrator.deploy import cryptpw
from orchestrator.deploy.hostfiles import DOVECOT_USERS, DSYNC_COMMAND, VMAIL_HOME
from orchestrator.replication import guard
from tests.deploy.conftest import DeployedLab, deployed  # noqa: F401 (the fixture)
from tests.deploy.labhosts import ssh
from tests.probes.lab_helpers import probe

pytestmark = [pytest.mark.lab, pytest.mark.dovecot24]
USER = "hazard@example.test"
BACKUP = "/root/users.before-hazard"


def mailbox(lab: LabState, host: str) -> tuple[str, int]:
    """(INBOX GUID, messages) of the hazard user on `host`."""
    out = ssh(lab, host, f"doveadm -f tab mailbox status -u {USER} 'guid messages' '*'")
    lines = out.splitlines()
    header = lines[0].lower().split("\t")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        if row["mailbox"] == "INBOX":
            return row["guid"], int(row["messages"])
    raise AssertionError(f"{host}: {USER} has no INBOX: {out!r}")


def save(lab: LabState, host: str, subject: str) -> None:
    ssh(lab, host, f"printf 'Subject: {subject}\\n\\nmine\\n' | doveadm save -u {USER}")


def user_row(lab: LabState, host: str) -> list[str]:
    for line in ssh(lab, host, f"{DSYNC_COMMAND} status '*'").splitlines():
        if line.startswith(USER + "\t"):
            return line.split("\t")
    return []


def wait_refused(lab: LabState, host: str, since: float, within: float = 30.0) -> list[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = user_row(lab, host)
        if row and row[5] == "y" and "REFUSED" in row[6]:
            return row
        time.sleep(0.5)
    raise AssertionError(f"{host}: {USER} not refused within {within:g} s: {user_row(lab, host)}")


@pytest.fixture
def two_inboxes(deployed_pair: LabState) -> Iterator[tuple[LabState, str]]:
    """The hazard user on both hosts, an INBOX of its own on each (replication stopped
    while they are made, as if the hosts had been apart)."""
    lab = deployed_pair
    password = secrets.token_urlsafe(18)
    line = f"{USER}:{cryptpw.argon2id(password)}::::::"
    try:
        for host in ("mx1", "mx2"):
            ssh(
                lab,
                host,
                f"systemctl stop mxctl-dsync; cp {DOVECOT_USERS} {BACKUP}; "
                f"echo '{line}' >> {DOVECOT_USERS}",
            )
        save(lab, "mx1", "primary-1")
        save(lab, "mx1", "primary-2")
        save(lab, "mx2", "standby-1")
        for host in ("mx1", "mx2"):
            ssh(lab, host, "systemctl start mxctl-dsync")
        yield lab, password
    finally:
        for host in ("mx1", "mx2"):
            ssh(
                lab,
                host,
                f"systemctl stop mxctl-dsync; cp {BACKUP} {DOVECOT_USERS}; "
                f"rm -rf {VMAIL_HOME}/example.test/hazard; "
                f"sed -i '/{USER}/d' /var/lib/mxctl-dsync/state.json 2>/dev/null; "
                "systemctl start mxctl-dsync",
            )


@pytest.fixture
def deployed_pair(deployed: DeployedLab, lab: LabState) -> LabState:  # noqa: F811
    release = ssh(lab, "mx1", "dovecot --version").strip()
    assert release.startswith("2.4"), (
        "this test needs a Dovecot 2.4 pair: run it with MXCTL_LAB_SUITE=trixie"
    )
    return lab


def test_different_inbox_guids_are_refused_alerted_and_left_untouched(
    two_inboxes: tuple[LabState, str],
) -> None:
    lab, password = two_inboxes
    before = {host: mailbox(lab, host) for host in ("mx1", "mx2")}
    assert before["mx1"][0] != before["mx2"][0] and [m for _, m in before.values()] == [2, 1]

    # A sweep (at start) refuses the user on both hosts, naming both GUIDs.
    since = time.time()
    for host in ("mx1", "mx2"):
        row = wait_refused(lab, host, since)
        assert before["mx1"][0] in row[6] and before["mx2"][0] in row[6]
        journal = ssh(lab, host, "journalctl -u mxctl-dsync --no-pager -n 50")
        assert f"ALERT: {USER}: REFUSED: INBOX GUIDs differ" in journal

    # A change on the primary asks for a prompt sync: refused as well.
    context = ssl.create_default_context(cafile=lab.ca_cert)
    with Imaps(lab.host("mx1").address, CLIENT_NAME, context) as imap:
        imap.login(USER, password)
        imap.append("INBOX", "", imaplib_time(), b"Subject: primary-3\r\n\r\nnew\r\n")
    time.sleep(2.0)
    row = wait_refused(lab, "mx1", since)
    assert guard.hms(0) <= row[2] <= "00:00:03"  # a sync was attempted just now, and refused
    # `sync --all` (what the controller's convergence step runs) leaves the user refused.
    ssh(lab, "mx1", f"{DSYNC_COMMAND} sync --all")
    time.sleep(1.0)
    wait_refused(lab, "mx1", since)

    # The probes say so, naming the user.
    state = probe(lab_settings(lab), "mx1", "host-state")["host-state"]
    assert not state.ok and f"replication failing for {USER}" in state.message

    # Nothing was lost or changed on either side.
    after = {host: mailbox(lab, host) for host in ("mx1", "mx2")}
    assert after == {"mx1": (before["mx1"][0], 3), "mx2": before["mx2"]}


def imaplib_time() -> str:
    import imaplib

    return imaplib.Time2Internaldate(time.time())
