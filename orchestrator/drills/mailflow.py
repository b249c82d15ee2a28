"""Mail through the MX during a failover drill: what was accepted, and what arrived.

A thread hands one drill message to whatever host the MX names every `every` seconds (the
MX is resolved again for each, at the configured nameservers, as a remote MTA would); the
time mail was not accepted runs from the last accepted hand-over's end to the next one's
start, measured, whatever each failed attempt took (a silent host costs a timeout, not an
interval). Afterwards
the probe user's INBOX on the primary must hold every accepted message: the others are lost.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import threading
import time
import uuid
from dataclasses import dataclass

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.loader import MxctlConfig
from orchestrator.probes.mxsend import canary_message, resolve_exchange, send_through_mx
from orchestrator.probes.result import Progress

DRILL_HEADER = "X-Mxctl-Canary"  # the canary's header: probes already ignore these


@dataclass(frozen=True)
class Attempt:
    token: str
    started: float  # monotonic, when the hand-over began
    ended: float  # monotonic, when it was accepted or given up
    accepted: bool
    exchange: str
    error: str = ""


class MailFlow(threading.Thread):
    def __init__(self, config: MxctlConfig, every: float = 0.5) -> None:
        super().__init__(daemon=True, name="drill-mailflow")
        self.config, self.every = config, every
        self.attempts: list[Attempt] = []
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        probes = self.config.probes
        domain = probes.canary_domain or probes.probe_user.rpartition("@")[2]
        n = 0
        start = time.monotonic()
        while not self.stop.is_set():
            token = f"drill-{uuid.uuid4().hex[:12]}"
            exchange, began = "", time.monotonic()
            try:
                async with asyncio.timeout(max(2.0, probes.timeout * 3)):
                    mx = await resolve_exchange(domain, probes.canary_nameservers, probes.timeout)
                    exchange = mx.name
                    message = canary_message(
                        token,
                        probes.probe_user,
                        probes.probe_user,
                        probes.helo_name,
                        SYSTEM_CLOCK.now(),
                    )
                    await send_through_mx(
                        Progress(),
                        mx,
                        helo_name=probes.helo_name,
                        sender=probes.probe_user,
                        recipient=probes.probe_user,
                        message=message,
                    )
                self.attempts.append(Attempt(token, began, time.monotonic(), True, exchange))
            except Exception as exc:  # any failure is "not accepted" for this interval
                self.attempts.append(
                    Attempt(token, began, time.monotonic(), False, exchange, type(exc).__name__)
                )
            n += 1
            pause = start + n * self.every - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)


def delivered_tokens(config: MxctlConfig, address: str, tokens: list[str]) -> set[str]:
    """Which drill messages the probe user's INBOX on `address` holds; they are deleted."""
    probes = config.probes
    context = ssl.create_default_context(cafile=probes.ca_file)
    found: set[str] = set()

    class Client(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout: float | None) -> ssl.SSLSocket:
            import socket

            sock = socket.create_connection((address, 993), timeout)
            return context.wrap_socket(sock, server_hostname=probes.client_name)

    with Client(address, 993, ssl_context=context, timeout=30) as imap:
        imap.login(probes.probe_user, probes.probe_password.reveal())
        imap.select("INBOX")
        _, data = imap.search(None, "HEADER", DRILL_HEADER, "drill-")
        numbers = data[0].split() if data and data[0] else []
        for start in range(0, len(numbers), 200):
            chunk = b",".join(numbers[start : start + 200]).decode()
            _, fetched = imap.fetch(chunk, f"(BODY.PEEK[HEADER.FIELDS ({DRILL_HEADER})])")
            for part in fetched:
                if isinstance(part, tuple):
                    found.add(part[1].decode().split(":", 1)[1].strip())
        if numbers:
            imap.store(b",".join(numbers).decode(), "+FLAGS.SILENT", r"(\Deleted)")
            imap.expunge()
    return found & set(tokens)
