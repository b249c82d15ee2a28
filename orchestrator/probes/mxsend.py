"""Hand the canary to the domain's MX the way an outside MTA would.

Look up the MX through the configured resolvers, connect to the best exchange on port 25,
encrypt opportunistically (an outside MTA does not insist on a valid certificate: that is
the SMTP probe's job) and send one message.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime

import dns.asyncresolver
import dns.exception
import dns.resolver

from orchestrator.probes.lines import LineConnection
from orchestrator.probes.result import ErrorClass, Progress, StepFailed
from orchestrator.probes.smtp import SmtpSession
from orchestrator.probes.tlscheck import opportunistic_context

CANARY_HEADER = "X-Mxctl-Canary"


@dataclass(frozen=True)
class Exchange:
    name: str  # mx1.example.test
    address: str


def canary_message(token: str, sender: str, recipient: str, helo_name: str, now: datetime) -> str:
    lines = [
        f"From: mxctl canary <{sender}>",
        f"To: <{recipient}>",
        f"Subject: mxctl canary {token}",
        f"Date: {email.utils.format_datetime(now)}",
        f"Message-ID: <{token}@{helo_name}>",
        f"{CANARY_HEADER}: {token}",
        "Auto-Submitted: auto-generated",
        "",
        f"mxctl delivery canary {token}; mxctl deletes it once it has been seen.",
    ]
    return "\r\n".join(lines) + "\r\n"


async def resolve_exchange(domain: str, nameservers: tuple[str, ...], timeout: float) -> Exchange:
    """The most preferred MX of `domain` and its IPv4 address."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = list(nameservers)
    resolver.lifetime = timeout
    try:
        answer = await resolver.resolve(domain, "MX")
        best = min(answer, key=lambda r: int(r.preference))
        exchange = str(best.exchange).rstrip(".")
        addresses = await resolver.resolve(exchange, "A")
    except dns.exception.Timeout:
        raise TimeoutError(f"no DNS answer for the MX of {domain}") from None
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers) as exc:
        raise StepFailed(ErrorClass.UNEXPECTED_REPLY, f"MX lookup for {domain}: {exc}") from None
    return Exchange(exchange, str(next(iter(addresses))))


async def send_through_mx(
    progress: Progress,
    exchange: Exchange,
    *,
    helo_name: str,
    sender: str,
    recipient: str,
    message: str,
) -> None:
    progress.at("connect")
    connection = await LineConnection.open(exchange.address, 25)
    try:
        session = SmtpSession(connection, progress)
        await session.greet()
        offered = await session.ehlo(helo_name)
        if "STARTTLS" in offered:
            await session.starttls(offered, opportunistic_context(), exchange.name)
            await session.ehlo(helo_name)
        await session.command("mail", f"MAIL FROM:<{sender}>", 250)
        await session.command("rcpt", f"RCPT TO:<{recipient}>", 250)
        await session.command("data", "DATA", 354)
        # Dot-stuffing: our body has no line starting with a dot; the terminator follows.
        await connection.send_bytes(message.encode("utf-8") + b".\r\n")
        progress.at("data-end")
        reply = await session.read_reply()
        progress.note(queued=reply.text[:200])
        if reply.code != 250:
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY, f"end of DATA answered {reply.code} {reply.text}"
            )
        await session.quit()
    finally:
        connection.close()
