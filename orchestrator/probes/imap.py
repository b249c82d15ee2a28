"""IMAP probes: 993 (implicit TLS) and 143 (STARTTLS), login as the probe user, SELECT.

`ImapSession` also serves the canary (SEARCH for its token, expunge it afterwards).
"""

from __future__ import annotations

import contextlib
import re
import ssl
from dataclasses import dataclass
from datetime import datetime

from orchestrator.probes.lines import LineConnection
from orchestrator.probes.result import ErrorClass, Progress, StepFailed
from orchestrator.probes.tlscheck import check_peer_certificate

_LITERAL = re.compile(r"\{(\d+)\+?\}$")
_RESP_CODE = re.compile(r"^\[([A-Z-]+)")
MAX_LITERAL = 1 << 20
AUTH_FAILURE_CODES = {"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED"}


@dataclass(frozen=True)
class ImapResponse:
    status: str  # OK | NO | BAD
    text: str
    untagged: tuple[str, ...]

    @property
    def code(self) -> str:
        match = _RESP_CODE.match(self.text)
        return match.group(1) if match else ""


def quote(value: str) -> str:
    """An IMAP quoted string; values a quoted string cannot carry are refused."""
    if any(c in value for c in "\r\n\0") or not value.isascii():
        raise StepFailed(ErrorClass.INTERNAL, "credential not representable as an IMAP string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def login_command(user: str, password: str) -> str:
    return f"LOGIN {quote(user)} {quote(password)}"


def check_login(response: ImapResponse, user: str) -> None:
    if response.status == "OK":
        return
    if response.status == "NO" and (not response.code or response.code in AUTH_FAILURE_CODES):
        raise StepFailed(ErrorClass.AUTH, f"login of {user} rejected: {response.text}")
    raise StepFailed(
        ErrorClass.UNEXPECTED_REPLY, f"LOGIN answered {response.status} {response.text}"
    )


def messages_of(select: ImapResponse) -> int:
    """The message count (EXISTS) in a SELECT response."""
    for line in select.untagged:
        parts = line.split(" ")
        if len(parts) >= 3 and parts[2] == "EXISTS" and parts[1].isdigit():
            return int(parts[1])
    return 0


class ImapSession:
    def __init__(self, connection: LineConnection, progress: Progress) -> None:
        self.connection = connection
        self.progress = progress
        self._counter = 0
        self._pending: list[str] = []

    async def _read_full_line(self) -> str:
        """A response line with any literals inlined (we only skim them)."""
        line = await self.connection.read_line()
        while match := _LITERAL.search(line):
            size = int(match.group(1))
            if size > MAX_LITERAL:
                raise StepFailed(ErrorClass.PROTOCOL, f"IMAP literal of {size} bytes")
            literal = await self.connection.read_exactly(size)
            line = line[: match.start()] + literal.decode("utf-8", "replace")
            line += await self.connection.read_line()
        return line

    async def greet(self) -> None:
        self.progress.at("greeting")
        line = await self._read_full_line()
        self.progress.note(greeting=line[:200])
        if line.startswith("* OK"):
            return
        if line.startswith(("* BYE", "* PREAUTH")):
            raise StepFailed(ErrorClass.UNEXPECTED_REPLY, f"greeting {line[:200]!r}")
        raise StepFailed(ErrorClass.PROTOCOL, f"garbled IMAP greeting {line[:80]!r}")

    def queue(self, command: str) -> str:
        """Queue a tagged command (sent by `flush`); returns its tag."""
        self._counter += 1
        tag = f"p{self._counter}"
        self._pending.append(f"{tag} {command}\r\n")
        return tag

    async def flush(self) -> None:
        data, self._pending = "".join(self._pending), []
        await self.connection.send_bytes(data.encode("utf-8"))

    async def response(self, step: str, tag: str, *, closing: bool = False) -> ImapResponse:
        """Read up to the tagged response of `tag`; a BYE is fatal unless `closing`."""
        self.progress.at(step)
        untagged: list[str] = []
        while True:
            line = await self._read_full_line()
            if line.startswith(tag + " "):
                status, _, text = line[len(tag) + 1 :].partition(" ")
                if status not in ("OK", "NO", "BAD"):
                    raise StepFailed(ErrorClass.PROTOCOL, f"garbled tagged reply {line[:80]!r}")
                return ImapResponse(status, text, tuple(untagged))
            if line.startswith("* BYE") and not closing:
                raise StepFailed(ErrorClass.UNEXPECTED_REPLY, f"server said {line[:200]!r}")
            if not line.startswith(("*", "+")):
                raise StepFailed(ErrorClass.PROTOCOL, f"garbled IMAP line {line[:80]!r}")
            untagged.append(line)

    async def command(self, step: str, command: str, *, closing: bool = False) -> ImapResponse:
        """Send a tagged command; return its response, whatever the status."""
        self.progress.at(step)
        tag = self.queue(command)
        await self.flush()
        return await self.response(step, tag, closing=closing)

    async def expect_ok(self, step: str, command: str, shown: str | None = None) -> ImapResponse:
        response = await self.command(step, command)
        if response.status != "OK":
            name = shown or command.split(" ")[0]
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY, f"{name} answered {response.status} {response.text}"
            )
        return response

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        await self.expect_ok("starttls", "STARTTLS")
        self.progress.at("tls")
        await self.connection.start_tls(context, server_hostname)

    async def login(self, user: str, password: str) -> None:
        response = await self.command("login", login_command(user, password))
        check_login(response, user)

    async def select(self, mailbox: str = "INBOX") -> int:
        """SELECT; returns the number of messages (EXISTS)."""
        return messages_of(await self.expect_ok("select", f"SELECT {quote(mailbox)}"))

    async def uid_search(self, criteria: str) -> list[int]:
        response = await self.expect_ok("search", f"UID SEARCH {criteria}", "UID SEARCH")
        uids: list[int] = []
        for line in response.untagged:
            if line.startswith("* SEARCH"):
                uids.extend(int(x) for x in line.split()[2:] if x.isdigit())
        return uids

    async def expunge_uids(self, uids: list[int]) -> None:
        if not uids:
            return
        uid_set = ",".join(str(u) for u in uids)
        await self.expect_ok("store", f"UID STORE {uid_set} +FLAGS.SILENT (\\Deleted)", "STORE")
        await self.expect_ok("expunge", f"UID EXPUNGE {uid_set}", "UID EXPUNGE")

    async def logout(self) -> None:
        # As with SMTP QUIT: the probe already passed; a failing LOGOUT changes nothing.
        with contextlib.suppress(OSError, EOFError, StepFailed):
            await self.command("logout", "LOGOUT", closing=True)


async def connect_imap(
    progress: Progress,
    *,
    address: str,
    port: int,
    implicit_tls: bool,
    context: ssl.SSLContext,
    cert_name: str,
    warn_days: float,
    now: datetime,
) -> ImapSession:
    """Connected and TLS-checked session, not logged in; the caller closes its connection."""
    progress.at("connect")
    connection = await LineConnection.open(address, port)
    try:
        session = ImapSession(connection, progress)
        if implicit_tls:
            progress.at("tls")
            await connection.start_tls(context, cert_name)
            await session.greet()
        else:
            await session.greet()
            await session.starttls(context, cert_name)
        progress.at("certificate")
        check_peer_certificate(connection.ssl_object, cert_name, warn_days, now, progress)
    except BaseException:
        connection.close()
        raise
    return session


async def open_imap(
    progress: Progress,
    *,
    address: str,
    port: int,
    implicit_tls: bool,
    context: ssl.SSLContext,
    cert_name: str,
    warn_days: float,
    now: datetime,
    login: tuple[str, str],
) -> ImapSession:
    """Connected, TLS-checked and logged-in session; the caller closes its connection."""
    session = await connect_imap(
        progress,
        address=address,
        port=port,
        implicit_tls=implicit_tls,
        context=context,
        cert_name=cert_name,
        warn_days=warn_days,
        now=now,
    )
    try:
        await session.login(*login)
    except BaseException:
        session.connection.close()
        raise
    return session


async def probe_imap(
    progress: Progress,
    *,
    address: str,
    port: int,
    implicit_tls: bool,
    context: ssl.SSLContext,
    cert_name: str,
    warn_days: float,
    now: datetime,
    login: tuple[str, str],
) -> None:
    """TLS and certificate, then LOGIN, SELECT and LOGOUT pipelined in one write (RFC 3501
    5.5 allows it): one round trip instead of three, each response judged in order."""
    session = await connect_imap(
        progress,
        address=address,
        port=port,
        implicit_tls=implicit_tls,
        context=context,
        cert_name=cert_name,
        warn_days=warn_days,
        now=now,
    )
    try:
        user, password = login
        login_tag = session.queue(login_command(user, password))
        select_tag = session.queue("SELECT INBOX")
        logout_tag = session.queue("LOGOUT")
        progress.at("login")
        await session.flush()
        check_login(await session.response("login", login_tag), user)
        select = await session.response("select", select_tag)
        if select.status != "OK":
            raise StepFailed(
                ErrorClass.UNEXPECTED_REPLY, f"SELECT answered {select.status} {select.text}"
            )
        progress.note(messages=messages_of(select))
        with contextlib.suppress(OSError, EOFError, StepFailed):
            await session.response("logout", logout_tag, closing=True)
    finally:
        session.connection.close()
