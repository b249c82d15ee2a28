"""SMTP probes: the MX on 25 (banner, EHLO, STARTTLS, certificate) and submission on 587.

`SmtpSession` is also what the canary uses to hand a message to the MX like an outside MTA.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from datetime import datetime

from orchestrator.probes.lines import LineConnection
from orchestrator.probes.result import ErrorClass, Progress, StepFailed
from orchestrator.probes.tlscheck import check_peer_certificate

MAX_REPLY_LINES = 100


@dataclass(frozen=True)
class SmtpReply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " / ".join(self.lines)

    def keywords(self) -> set[str]:
        """EHLO extension keywords (upper case), the greeting line excluded."""
        return {line.split(" ", 1)[0].upper() for line in self.lines[1:] if line}


def parse_reply_line(line: str) -> tuple[int, bool, str]:
    """(code, is_last, text) of one reply line; garbled lines are protocol errors."""
    code, sep, text = line[:3], line[3:4], line[4:]
    if not (code.isdigit() and code[0] in "2345" and sep in ("", " ", "-")):
        shown = line[:80]
        raise StepFailed(ErrorClass.PROTOCOL, f"garbled SMTP reply line {shown!r}")
    return int(code), sep != "-", text


class SmtpSession:
    def __init__(self, connection: LineConnection, progress: Progress) -> None:
        self.connection = connection
        self.progress = progress

    async def read_reply(self) -> SmtpReply:
        lines: list[str] = []
        first_code = 0
        while len(lines) < MAX_REPLY_LINES:
            code, last, text = parse_reply_line(await self.connection.read_line())
            if lines and code != first_code:
                raise StepFailed(ErrorClass.PROTOCOL, "SMTP reply lines with different codes")
            first_code = code
            lines.append(text)
            if last:
                return SmtpReply(code, tuple(lines))
        raise StepFailed(ErrorClass.PROTOCOL, f"SMTP reply longer than {MAX_REPLY_LINES} lines")

    async def command(
        self, step: str, line: str, expect: int, shown: str | None = None
    ) -> SmtpReply:
        """Send one command and insist on one reply code (`expect`)."""
        self.progress.at(step)
        await self.connection.send_line(line)
        reply = await self.read_reply()
        self.progress.note(**{f"{step}_code": reply.code})
        if reply.code != expect:
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY,
                f"{shown or line.split(' ')[0]} answered {reply.code} {reply.text[:200]}",
            )
        return reply

    async def greet(self) -> None:
        self.progress.at("banner")
        banner = await self.read_reply()
        self.progress.note(banner=banner.lines[0][:200], banner_code=banner.code)
        if banner.code != 220:
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY, f"banner {banner.code} {banner.text[:200]}"
            )

    async def ehlo(self, helo_name: str) -> set[str]:
        return (await self.command("ehlo", f"EHLO {helo_name}", 250)).keywords()

    async def starttls(
        self, offered: set[str], context: ssl.SSLContext, server_hostname: str
    ) -> None:
        if "STARTTLS" not in offered:
            raise StepFailed(ErrorClass.UNEXPECTED_REPLY, "EHLO reply does not offer STARTTLS")
        await self.command("starttls", "STARTTLS", 220)
        self.progress.at("tls")
        await self.connection.start_tls(context, server_hostname)

    async def auth_plain(self, offered: set[str], user: str, password: str) -> None:
        if "AUTH" not in offered:
            raise StepFailed(ErrorClass.UNEXPECTED_REPLY, "EHLO reply after TLS offers no AUTH")
        self.progress.at("auth")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
        await self.connection.send_line(f"AUTH PLAIN {token}")
        reply = await self.read_reply()
        self.progress.note(auth_code=reply.code)
        if reply.code == 535:
            raise StepFailed(ErrorClass.AUTH, f"credentials of {user} rejected: {reply.text[:200]}")
        if reply.code != 235:
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY, f"AUTH answered {reply.code} {reply.text}"
            )

    async def quit(self) -> None:
        # A failing QUIT says nothing about the service's health; the probe already passed.
        self.progress.at("quit")
        try:
            await self.connection.send_line("QUIT")
            await self.read_reply()
        except (OSError, EOFError, StepFailed):
            pass


async def probe_smtp(
    progress: Progress,
    *,
    address: str,
    port: int,
    helo_name: str,
    context: ssl.SSLContext,
    cert_name: str,
    warn_days: float,
    now: datetime,
    login: tuple[str, str] | None = None,
) -> None:
    """Banner 220, EHLO, STARTTLS, certificate for `cert_name`, EHLO; AUTH when `login`."""
    progress.at("connect")
    connection = await LineConnection.open(address, port)
    try:
        session = SmtpSession(connection, progress)
        await session.greet()
        offered = await session.ehlo(helo_name)
        await session.starttls(offered, context, cert_name)
        progress.at("certificate")
        check_peer_certificate(connection.ssl_object, cert_name, warn_days, now, progress)
        offered = await session.ehlo(helo_name)
        if login is not None:
            await session.auth_plain(offered, *login)
        await session.quit()
    finally:
        connection.close()
