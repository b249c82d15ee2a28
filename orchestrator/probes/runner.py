"""Run one probe under its own timeout and turn whatever happened into a `ProbeResult`.

Exceptions from sockets, TLS and our own checks are classified here, at the boundary, so a
probe body reads like the conversation it has and never deals with error bookkeeping.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Awaitable, Callable

from orchestrator.clock import Clock
from orchestrator.probes.result import ErrorClass, ProbeResult, Progress, StepFailed

log = logging.getLogger(__name__)

ProbeBody = Callable[[Progress], Awaitable[None]]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def classify(exc: BaseException, step: str) -> tuple[ErrorClass, str]:
    """The class of a failure and a sentence naming the step it happened at."""
    if isinstance(exc, StepFailed):
        return exc.error, exc.message
    if isinstance(exc, TimeoutError):
        return ErrorClass.TIMEOUT, f"no answer at step {step} within the probe timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Constructed by OpenSSL these carry verify_message/reason; be safe when they don't.
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return ErrorClass.CERTIFICATE, f"certificate rejected: {reason}"
    if isinstance(exc, ssl.SSLError):
        return ErrorClass.TLS, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}"
    if step == "tls" and isinstance(exc, ConnectionError | EOFError | asyncio.IncompleteReadError):
        return ErrorClass.TLS, "the server closed the connection during the TLS handshake"
    if isinstance(exc, ConnectionRefusedError):
        return ErrorClass.REFUSED, f"connection refused at step {step}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorClass.REFUSED, f"connection reset by the server at step {step}"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return ErrorClass.PROTOCOL, f"the server closed the connection at step {step}"
    if isinstance(exc, asyncio.LimitOverrunError):
        return ErrorClass.PROTOCOL, f"reply line too long at step {step}"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return ErrorClass.UNREACHABLE, f"{exc.strerror or exc} at step {step}"
    if isinstance(exc, OSError):
        return ErrorClass.REFUSED if exc.errno == errno.ECONNREFUSED else ErrorClass.PROTOCOL, (
            f"network error at step {step}: {exc.strerror or exc}"
        )
    return ErrorClass.INTERNAL, f"probe error at step {step}: {type(exc).__name__}: {exc}"


async def run_probe(
    probe: str, target: str, timeout: float, body: ProbeBody, clock: Clock
) -> ProbeResult:
    """Run `body` for at most `timeout` seconds; never raises (except on cancellation)."""
    progress = Progress()
    started = clock.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await body(progress)
    except Exception as exc:
        error, message = classify(exc, progress.step)
        if error is ErrorClass.INTERNAL:
            log.exception("%s probe of %s failed unexpectedly", probe, target)
        return ProbeResult(
            probe=probe,
            target=target,
            ok=False,
            latency=clock.monotonic() - started,
            error=error,
            step=progress.step,
            message=message,
            details=progress.details,
        )
    return ProbeResult(
        probe=probe,
        target=target,
        ok=True,
        latency=clock.monotonic() - started,
        step=progress.step,
        message="ok",
        details=progress.details,
    )
