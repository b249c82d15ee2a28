"""Small but real SMTP and IMAP servers on loopback, for the probe tests and the scale bench.

They speak the part of each protocol the probes use (banner, EHLO, STARTTLS, AUTH PLAIN,
QUIT; greeting, STARTTLS, LOGIN, SELECT, LOGOUT) over real TCP and TLS, and can be told to
misbehave the ways real servers do: a 554 banner, garbage, silence, a broken STARTTLS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

USER = "probe@example.test"
PASSWORD = "correct horse"


@dataclass(frozen=True)
class Behaviour:
    tls: ssl.SSLContext | None  # the server's certificate; None: no STARTTLS offered
    banner: str = "220 mx.test ESMTP synthetic"  # IMAP: the greeting line
    silent: bool = False  # accept the connection, never say anything (a hung daemon)
    plaintext_after_starttls: bool = False  # say "go ahead" and then not speak TLS
    user: str = USER
    password: str = PASSWORD


async def _smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, b: Behaviour) -> None:
    if b.silent:
        await reader.read()  # until the client gives up
        return
    writer.write(b.banner.encode() + b"\r\n")
    encrypted = False
    while line := await reader.readline():
        verb = line.decode().strip().split(" ", 1)
        command = verb[0].upper()
        if command == "EHLO":
            ext = ["AUTH PLAIN"] if encrypted else (["STARTTLS"] if b.tls else [])
            lines = ["mx.test", "PIPELINING", *ext]
            out = [f"250-{x}" for x in lines[:-1]] + [f"250 {lines[-1]}"]
            writer.write(("\r\n".join(out) + "\r\n").encode())
        elif command == "STARTTLS" and b.tls and not encrypted:
            writer.write(b"220 2.0.0 Ready to start TLS\r\n")
            await writer.drain()
            if b.plaintext_after_starttls:
                writer.write(b"this is not TLS\r\n" * 20)
                await writer.drain()
                return
            await writer.start_tls(b.tls)
            encrypted = True
        elif command == "AUTH" and encrypted:
            _, user, password = base64.b64decode(verb[1].split(" ", 1)[1]).decode().split("\0")
            ok = user == b.user and password == b.password
            writer.write(b"235 2.7.0 ok\r\n" if ok else b"535 5.7.8 authentication failed\r\n")
        elif command == "QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"502 5.5.2 unrecognized command\r\n")
        await writer.drain()


async def _imap(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, b: Behaviour, implicit: bool
) -> None:
    if b.silent:
        await reader.read()
        return
    if implicit:
        assert b.tls is not None
        await writer.start_tls(b.tls)
    writer.write(b.banner.encode() + b"\r\n")
    encrypted = implicit
    while line := await reader.readline():
        tag, _, rest = line.decode().strip().partition(" ")
        command, _, args = rest.partition(" ")
        command = command.upper()
        if command == "STARTTLS" and b.tls and not encrypted:
            writer.write(f"{tag} OK Begin TLS negotiation now\r\n".encode())
            await writer.drain()
            await writer.start_tls(b.tls)
            encrypted = True
            continue
        if command == "LOGIN":
            user, password = (x.strip('"') for x in args.split(" ", 1))
            if not encrypted:
                out = f"{tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed"
            elif user == b.user and password == b.password:
                out = f"{tag} OK [CAPABILITY IMAP4rev1] Logged in"
            else:
                out = f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed."
        elif command == "SELECT":
            out = f"* 0 EXISTS\r\n* 0 RECENT\r\n{tag} OK [READ-WRITE] Select completed"
        elif command == "LOGOUT":
            writer.write(f"* BYE Logging out\r\n{tag} OK Logout completed\r\n".encode())
            await writer.drain()
            return
        else:
            out = f"{tag} BAD Unknown command"
        writer.write(out.encode() + b"\r\n")
        await writer.drain()


@contextlib.asynccontextmanager
async def serve(kind: str, behaviour: Behaviour, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Run a server of `kind` (smtp, imaps, imap) on an ephemeral port; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind == "smtp":
                await _smtp(reader, writer, behaviour)
            else:
                await _imap(reader, writer, behaviour, implicit=kind == "imaps")
        except (OSError, ssl.SSLError, ValueError, IndexError, asyncio.IncompleteReadError):
            pass  # the client went away or spoke nonsense: a server just drops it
        except asyncio.CancelledError:
            pass  # the test is over and its event loop is closing
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, host, 0, backlog=4096)
    port = int(server.sockets[0].getsockname()[1])
    async with server:
        yield port
