"""TLS for the probes: one verifying context per CA bundle, and the peer certificate checks.

The chain and the name are verified by OpenSSL during the handshake (a failure there is a
`certificate` error); what OpenSSL does not judge is "expires too soon", checked here
against the injected clock.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from orchestrator.probes.result import ErrorClass, Progress, StepFailed

SECONDS_PER_DAY = 86400.0


@lru_cache(maxsize=8)
def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Chain and host name verified against `ca_file` (or the system's CAs when None)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@lru_cache(maxsize=1)
def opportunistic_context() -> ssl.SSLContext:
    """What an outside MTA does on port 25: encrypt when offered, accept any certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@lru_cache(maxsize=64)
def _not_after(text: str) -> datetime:
    # strptime is the costliest step of the check; a host presents the same date each round.
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)


def _names(cert: Mapping[str, object]) -> list[str]:
    entries = cert.get("subjectAltName", ())
    if not isinstance(entries, tuple):
        return []
    return [str(value) for kind, value in entries if kind == "DNS"]


def check_peer_certificate(
    ssl_object: ssl.SSLObject | None,
    name: str,
    warn_days: float,
    now: datetime,
    progress: Progress,
) -> None:
    """Record the verified certificate's facts; fail when it expires within `warn_days`."""
    if ssl_object is None:
        raise StepFailed(ErrorClass.TLS, "the connection is not encrypted after the handshake")
    cert = ssl_object.getpeercert()
    if not cert:
        raise StepFailed(ErrorClass.CERTIFICATE, "the server presented no certificate")
    not_after_text = cert.get("notAfter")
    if not isinstance(not_after_text, str):
        raise StepFailed(ErrorClass.CERTIFICATE, "the certificate has no expiry date")
    not_after = _not_after(not_after_text)
    days_left = (not_after - now).total_seconds() / SECONDS_PER_DAY
    progress.note(
        tls_version=ssl_object.version(),
        cert_name=name,
        cert_names=",".join(_names(cert)),
        cert_not_after=not_after.isoformat(),
        cert_days_left=round(days_left, 1),
    )
    if days_left < warn_days:
        raise StepFailed(
            ErrorClass.CERTIFICATE,
            f"the certificate for {name} expires in {days_left:.1f} days "
            f"({not_after:%Y-%m-%d %H:%M} UTC), within the {warn_days:g}-day warning limit",
        )
