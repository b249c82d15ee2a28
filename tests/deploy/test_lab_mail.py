"""Acceptance on the lab with real traffic: MX routing, IMAP over TLS on both hosts,
two-way replication, submission with DKIM, no open relay, certificates for both names."""

from __future__ import annotations

import smtplib
import time

import dkim as dkimpy
import dns.message
import dns.query
import dns.rdatatype
import pytest
from mxlab.mailclient import (
    Imaps,
    find_by_subject,
    imap_starttls,
    make_message,
    smtp_starttls,
    wait_for,
)

from tests.deploy.conftest import DeployedLab
from tests.deploy.labhosts import ssh

pytestmark = pytest.mark.lab

ALICE = "alice@example.test"
BOB = "bob@example.org"
PROBE = "probe@example.test"
CLIENT_NAME = "mail.example.test"
REPLICATION_BUDGET = 2.0  # seconds, from the issue


def imap(deployed: DeployedLab, host: str, user: str) -> Imaps:
    client = Imaps(deployed.address(host), CLIENT_NAME, deployed.context)
    client.login(user, deployed.password(user))
    return client


def seen_at(deployed: DeployedLab, host: str, user: str, subject: str, timeout: float) -> float:
    """When (monotonic) the message showed up in the user's INBOX on `host`."""
    client = imap(deployed, host, user)
    try:
        found = wait_for(lambda: find_by_subject(client, subject), timeout)
        assert found is not None, f"{subject!r} not in {user}'s INBOX on {host} after {timeout} s"
        return time.monotonic()
    finally:
        client.logout()


@pytest.mark.parametrize("recipient", [ALICE, BOB])
def test_mx_routed_mail_is_readable_on_both_hosts(deployed: DeployedLab, recipient: str) -> None:
    """Hand a message to `sender`, which looks up the MX in the lab DNS and delivers it like
    any remote MTA; read it over IMAPS on mx1, then on mx2 within 2 s."""
    msg = make_message("tester@sender.example.test", recipient)
    with smtplib.SMTP(deployed.address("sender"), 25, local_hostname="ci.example.test") as smtp:
        smtp.send_message(msg)
    subject = str(msg["Subject"])
    on_primary = seen_at(deployed, "mx1", recipient, subject, timeout=30)
    on_standby = seen_at(deployed, "mx2", recipient, subject, timeout=REPLICATION_BUDGET)
    assert on_standby - on_primary < REPLICATION_BUDGET
    client = imap(deployed, "mx1", recipient)
    try:
        raw = find_by_subject(client, subject)
    finally:
        client.logout()
    assert raw is not None
    received = [v for k, v in _headers(raw) if k.lower() == "received"]
    # delivered by the sender's MTA to mx1, the MX, over TLS
    assert any("from sender.example.test" in r and "by mx1.example.test" in r for r in received)
    assert any("(using TLS" in r for r in received)


def _headers(raw: bytes) -> list[tuple[str, str]]:
    import email
    import email.policy

    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [(k, str(v)) for k, v in message.items()]


def test_append_on_standby_shows_on_primary(deployed: DeployedLab) -> None:
    msg = make_message(PROBE, PROBE)
    client = imap(deployed, "mx2", PROBE)
    try:
        status, _ = client.append("INBOX", None, None, msg.as_bytes())
        assert status == "OK"
    finally:
        client.logout()
    appended = time.monotonic()
    arrived = seen_at(deployed, "mx1", PROBE, str(msg["Subject"]), timeout=5)
    assert arrived - appended < 5


def _lab_txt(deployed: DeployedLab) -> object:
    server = deployed.lab.nameservers()[0].address

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        query = dns.message.make_query(name.decode().rstrip("."), dns.rdatatype.TXT)
        response = dns.query.udp(query, server, timeout=timeout)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(b"".join(rd.strings) for rd in rrset)
        return None

    return dnsfunc


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_submission_is_dkim_signed(deployed: DeployedLab, host: str) -> None:
    """AUTH on 587 (STARTTLS verified for the client name), then check the signature of the
    delivered copy against the key published in the lab DNS."""
    msg = make_message(ALICE, BOB)
    with smtp_starttls(
        deployed.address(host), 587, CLIENT_NAME, deployed.context, "laptop.example.test"
    ) as smtp:
        smtp.login(ALICE, deployed.password(ALICE))
        smtp.send_message(msg)
    client = imap(deployed, host, BOB)
    try:
        raw = wait_for(lambda: find_by_subject(client, str(msg["Subject"])), 10)
    finally:
        client.logout()
    assert raw is not None, f"submitted message not delivered on {host}"
    signatures = [v for k, v in _headers(raw) if k.lower() == "dkim-signature"]
    assert len(signatures) == 1, signatures
    assert "d=example.test" in signatures[0] and "s=mail" in signatures[0]
    assert dkimpy.verify(raw, dnsfunc=_lab_txt(deployed)), "DKIM signature does not verify"


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_relay_without_auth_is_rejected(deployed: DeployedLab, host: str) -> None:
    with smtplib.SMTP(deployed.address(host), 25, local_hostname="sender.example.test") as smtp:
        smtp.ehlo()
        assert "auth" not in smtp.esmtp_features  # AUTH only on submission
        smtp.mail("tester@sender.example.test")
        code, reply = smtp.rcpt("victim@example.net")
        assert code == 554 and b"Relay access denied" in reply, (code, reply)


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_submission_without_auth_is_rejected(deployed: DeployedLab, host: str) -> None:
    with smtp_starttls(
        deployed.address(host), 587, CLIENT_NAME, deployed.context, "laptop.example.test"
    ) as smtp:
        code, _ = smtp.mail(ALICE)
        if code < 400:
            code, _ = smtp.rcpt("victim@example.net")
        assert code >= 500


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_certificates_cover_host_and_client_names(deployed: DeployedLab, host: str) -> None:
    fqdn = deployed.lab.host(host).fqdn
    for name in (fqdn, CLIENT_NAME):
        client = Imaps(deployed.address(host), name, deployed.context)
        assert set(client.peer_names()) == {fqdn, CLIENT_NAME}
        client.logout()
        starttls = imap_starttls(deployed.address(host), name, deployed.context)
        starttls.logout()
        for port in (25, 587):
            smtp_starttls(
                deployed.address(host), port, name, deployed.context, "ci.example.test"
            ).quit()


@pytest.mark.parametrize("host", ["mx1", "mx2"])
def test_outbound_mail_is_signed_for_the_receiver(deployed: DeployedLab, host: str) -> None:
    """Submitted for a remote domain, the message leaves by MX/A lookup to the sender host;
    the copy that arrives there verifies against the published key."""
    msg = make_message(ALICE, "root@sender.example.test")
    subject = str(msg["Subject"])
    with smtp_starttls(
        deployed.address(host), 587, CLIENT_NAME, deployed.context, "laptop.example.test"
    ) as smtp:
        smtp.login(ALICE, deployed.password(ALICE))
        smtp.send_message(msg)

    def arrived() -> bytes | None:
        mbox = ssh(deployed.lab, "sender", "cat /var/mail/root 2>/dev/null || true").encode()
        for chunk in mbox.split(b"\nFrom ")[::-1]:
            if f"Subject: {subject}".encode() in chunk:
                return chunk.split(b"\n", 1)[1]  # drop the mbox "From " line
        return None

    raw = wait_for(arrived, 15, interval=0.25)
    assert raw is not None, f"message from {host} did not reach sender.example.test"
    received = [v for k, v in _headers(raw) if k.lower() == "received"]
    assert any(f"by {host}.example.test" in r for r in received)
    assert dkimpy.verify(raw, dnsfunc=_lab_txt(deployed)), "DKIM signature does not verify"
