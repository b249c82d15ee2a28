"""A line-oriented TCP conversation (SMTP, IMAP) on asyncio streams, with STARTTLS.

The probes speak a handful of commands each, and every failure must be pinned to the step
it happened at; a small client over asyncio streams and the stdlib's `ssl` does that with
less code and less CPU per probe than wrapping a full client library's exceptions.
Timeouts are not handled here: the probe runner bounds the whole conversation.
"""

from __future__ import annotations

import asyncio
import ssl

from orchestrator.probes.result import ErrorClass, StepFailed

MAX_LINE = 8192  # longer replies are garbage for our purposes


class LineConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> LineConnection:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
        return cls(reader, writer)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        # The runner's timeout bounds the handshake; asyncio's own 60 s default is moot.
        await self._writer.start_tls(context, server_hostname=server_hostname)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self._writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def read_line(self) -> str:
        """One line without its CRLF; EOF is an `IncompleteReadError` for the runner."""
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise StepFailed(ErrorClass.PROTOCOL, "a reply line is longer than 8 KiB") from None
        return raw.rstrip(b"\r\n").decode("utf-8", errors="replace")

    async def read_exactly(self, count: int) -> bytes:
        return await self._reader.readexactly(count)

    async def send_line(self, line: str) -> None:
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    async def send_bytes(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        """Drop the connection without waiting: a hung peer must not hold the probe."""
        transport = self._writer.transport
        if transport.is_closing():
            return
        transport.abort()
