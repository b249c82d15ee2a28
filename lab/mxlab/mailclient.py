"""Real mail traffic for the lab tests: SMTP and IMAP over TLS verified against the lab CA.

The machine does not resolve lab names, so clients connect to a host's address while TLS
checks the certificate against the name a real client would use (SNI + hostname check).
"""

from __future__ import annotations

import email
import imaplib
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import TypeVar

from mxlab.mailtraffic import Imaps

__all__ = ["Imaps"]  # the lab's IMAPS client, shared with the demo and benches

T = TypeVar("T")


def tls_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def served_certificate(
    address: str, server_name: str, context: ssl.SSLContext, port: int = 993
) -> dict[str, object]:
    """The certificate `address` serves on `port` (implicit TLS), verified by `context` for
    `server_name`; raises ssl.SSLError when it does not verify."""
    with (
        socket.create_connection((address, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        cert = tls.getpeercert()
    if cert is None:
        raise ssl.SSLError(f"{address}:{port} sent no certificate")
    return dict(cert)


def imap_starttls(address: str, server_name: str, context: ssl.SSLContext) -> imaplib.IMAP4:
    """IMAP on 143 upgraded with STARTTLS, verified for `server_name`."""
    client = imaplib.IMAP4(address, 143, timeout=5.0)
    client.host = server_name  # starttls() verifies against self.host
    client.starttls(ssl_context=context)
    return client


def smtp_starttls(
    address: str, port: int, server_name: str, context: ssl.SSLContext, helo: str
) -> smtplib.SMTP:
    """SMTP to `address`:`port`, upgraded with STARTTLS verified for `server_name`."""
    client = smtplib.SMTP(address, port, local_hostname=helo, timeout=10)
    client.ehlo()
    client._host = server_name  # type: ignore[attr-defined]  # starttls() checks this name
    client.starttls(context=context)
    client.ehlo()
    return client


def make_message(sender: str, recipient: str, subject: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject or f"mxctl test {uuid.uuid4().hex}"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@mxctl.test>"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg.set_content("A message from the mxctl lab tests.\n")
    return msg


def find_by_subject(client: imaplib.IMAP4, subject: str) -> bytes | None:
    """The raw message in INBOX with this subject, or None."""
    client.select("INBOX")
    status, data = client.search(None, "HEADER", "Subject", f'"{subject}"')
    if status != "OK" or not data or not data[0]:
        return None
    number = data[0].split()[-1]
    status, fetched = client.fetch(number.decode(), "(BODY.PEEK[])")
    if status != "OK":
        return None
    for part in fetched:
        if isinstance(part, tuple):
            return bytes(part[1])
    return None


def wait_for(probe: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T | None:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
