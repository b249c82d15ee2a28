"""What one probe found: ok or failed, how long it took, which class of failure, the detail.

The controller decides from these, so a failure names its class precisely (a refused
connection and a silent one mean different things: a dead daemon, a hung or cut-off host)
and the step where it happened ("timeout waiting for the banner").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.errors import ProbeError

DetailValue = str | int | float | bool | None


class ErrorClass(StrEnum):
    """Why a probe failed. The first seven are the issue's; the rest cover SSH and the canary."""

    REFUSED = "refused"  # ECONNREFUSED or a reset: the host answers, nothing listens
    TIMEOUT = "timeout"  # no answer within the probe's timeout: host cut off or daemon hung
    TLS = "tls"  # the TLS handshake failed (protocol, cipher, alert)
    CERTIFICATE = "certificate"  # chain, name or expiry not acceptable
    AUTH = "auth"  # the server rejected the probe user's credentials
    PROTOCOL = "protocol"  # garbled reply, or the connection closed mid-conversation
    UNEXPECTED_REPLY = "unexpected_reply"  # a well-formed reply we did not want (421, 554, NO)
    UNREACHABLE = "unreachable"  # no route or no ARP answer (EHOSTUNREACH, ENETUNREACH)
    HOST_KEY = "host_key"  # SSH: the host key is unknown or differs from the pinned one
    LAGGING = "lagging"  # the standby has not caught up with the primary in time
    UNHEALTHY = "unhealthy"  # the host answered and reports a bad state (daemon down, disk)
    INTERNAL = "internal"  # a bug in the probe itself; never blamed on the host


class StepFailed(ProbeError):
    """Raised inside a probe to end it with a chosen class; turned into a result, never leaked."""

    def __init__(self, error: ErrorClass, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass
class Progress:
    """Where a running probe is, and what it has learnt so far (kept when it fails)."""

    step: str = "start"
    details: dict[str, DetailValue] = field(default_factory=dict)

    def at(self, step: str) -> None:
        self.step = step

    def note(self, **details: DetailValue) -> None:
        self.details.update(details)


@dataclass(frozen=True)
class ProbeResult:
    probe: str  # smtp, submission, imaps, imap-starttls, host-state, canary-delivery, ...
    target: str  # the host's name (mx1) or what was probed
    ok: bool
    latency: float  # seconds until success, or until the failure was known
    error: ErrorClass | None = None
    step: str = ""  # the step that failed, or the last one on success
    message: str = ""  # one sentence for humans
    details: Mapping[str, DetailValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ok != (self.error is None):
            raise ValueError("a result is ok exactly when it has no error class")

    def summary(self) -> str:
        if self.ok:
            return f"{self.probe} {self.target}: ok in {self.latency * 1000:.0f} ms"
        return f"{self.probe} {self.target}: {self.error} at {self.step}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "target": self.target,
            "ok": self.ok,
            "latency_ms": round(self.latency * 1000, 1),
            "error": None if self.error is None else str(self.error),
            "step": self.step,
            "message": self.message,
            "details": dict(self.details),
        }
