"""Real mail through the lab: messages handed to `sender`'s MTA, counted by IMAP on a host.

`sender` resolves the MX through the lab DNS and delivers as any remote MTA would, so a
message accepted here and later readable on the new primary has crossed a failover the
way real mail does.
"""

from __future__ import annotations

import contextlib
import email.utils
import imaplib
import smtplib
import socket
import ssl
import threading
import time
import uuid
from email.message import EmailMessage

from mxlab import acmehost, control
from mxlab.state import LabState, state_dir

USER = "alice@example.test"
CLIENT_NAME = "mail.example.test"


def message(subject: str, recipient: str = USER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "traffic@sender.example.test"
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@mxctl.test>"
    msg["Date"] = email.utils.formatdate()
    msg.set_content("Mail through the mxctl lab.\n")
    return msg


class SteadySender(threading.Thread):
    """Hands messages to sender's MTA at `rate` per second; records the accepted ones."""

    def __init__(self, lab: LabState, prefix: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.address = lab.host("sender").address
        self.prefix, self.rate = prefix, rate
        self.accepted: list[str] = []
        self.accepted_at: dict[str, float] = {}  # subject -> time.time() sender took it
        self.refused = 0
        self.stop = threading.Event()

    def _connect(self) -> smtplib.SMTP:
        return smtplib.SMTP(self.address, 25, local_hostname="client.example.test", timeout=5)

    def run(self) -> None:
        smtp, n, started = self._connect(), 0, time.monotonic()
        while not self.stop.is_set():
            subject = f"{self.prefix}-{n:05d}"
            try:
                smtp.send_message(message(subject))
                self.accepted.append(subject)
                self.accepted_at[subject] = time.time()
            except (smtplib.SMTPException, OSError):
                self.refused += 1
                smtp = self._connect()
            n += 1
            pause = started + n / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        smtp.quit()


class Imaps(imaplib.IMAP4_SSL):
    """IMAP over TLS (993) to `address`, verifying the certificate for `server_name`: the
    machine does not resolve lab names, so TLS checks the name a real client would use."""

    def __init__(
        self,
        address: str,
        server_name: str,
        context: ssl.SSLContext,
        timeout: float = 5.0,
    ) -> None:
        self._address = address
        self._server_name = server_name
        self._context = context
        super().__init__(address, 993, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> ssl.SSLSocket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self._context.wrap_socket(sock, server_hostname=self._server_name)

    def peer_names(self) -> list[str]:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        names = (sock.getpeercert() or {}).get("subjectAltName", ())
        return [str(entry[1]) for entry in names if entry[0] == "DNS"]


def subjects_on(lab: LabState, host: str, prefix: str, user: str = USER) -> set[str]:
    """Subjects starting with `prefix-` in the user's INBOX on `host` (IMAPS, lab CA)."""
    return set(arrivals_on(lab, host, prefix, user))


def arrivals_on(lab: LabState, host: str, prefix: str, user: str = USER) -> dict[str, float]:
    """Subject -> INTERNALDATE (when the mailbox first received it; a replicated copy keeps
    the original's), for subjects starting with `prefix-` on `host`."""
    secret = state_dir() / "secrets" / f"mail-user-{user.replace('@', '-at-')}"
    context = ssl.create_default_context(cafile=acmehost.trust_file(lab))
    with Imaps(lab.host(host).address, CLIENT_NAME, context, timeout=10) as imap:
        imap.login(user, secret.read_text().strip())
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "SUBJECT", f'"{prefix}-"')
        numbers = data[0].split() if data and data[0] else []
        found: dict[str, float] = {}
        for start in range(0, len(numbers), 200):
            chunk = b",".join(numbers[start : start + 200]).decode()
            _, fetched = imap.fetch(chunk, "(INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for part in fetched:
                if isinstance(part, tuple):
                    received = imaplib.Internaldate2tuple(part[0])
                    subject = part[1].decode().split(":", 1)[1].strip()
                    found[subject] = time.mktime(received) if received else 0.0
        return found


def held_on(lab: LabState, hosts: tuple[str, ...], prefix: str) -> set[str]:
    """Subjects in the INBOX of any of `hosts` (one that does not answer counts none)."""
    found: set[str] = set()
    for host in hosts:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            found |= subjects_on(lab, host, prefix)
    return found


def lost_after_rpo_flush(
    lab: LabState, hosts: tuple[str, ...], prefix: str, accepted: set[str], limit: float
) -> set[str]:
    """RPO, counted after the fact: the accepted messages on none of `hosts` once the
    outside sender has handed over what it still queues (`postqueue -f`, for this count
    only). A real MTA retries on its own schedule, so no downtime or delay figure may be
    taken after this: measure those first, without a flush, then call it."""
    deadline = time.monotonic() + limit
    while True:
        missing = accepted - held_on(lab, hosts, prefix)
        if not missing or time.monotonic() > deadline:
            return missing
        control.exec_in("sender", ["postqueue", "-f"], capture=True)
        time.sleep(2)
