"""The four service probes of one mail host, each under its own timeout.

Port 25 must present a certificate valid for the host's MX name; 587, 993 and 143 are what
clients reach through the client-facing name, so their certificate must be valid for that.
"""

from __future__ import annotations

from orchestrator.clock import Clock
from orchestrator.probes.imap import probe_imap
from orchestrator.probes.result import ProbeResult, Progress
from orchestrator.probes.runner import run_probe
from orchestrator.probes.settings import MailHostTarget, ProbeSettings
from orchestrator.probes.smtp import probe_smtp
from orchestrator.probes.tlscheck import verifying_context

SERVICE_PROBES = ("smtp", "submission", "imaps", "imap-starttls")


async def smtp(settings: ProbeSettings, host: MailHostTarget, clock: Clock) -> ProbeResult:
    async def body(progress: Progress) -> None:
        await probe_smtp(
            progress,
            address=host.address,
            port=settings.ports.smtp,
            helo_name=settings.helo_name,
            context=verifying_context(settings.ca_file),
            cert_name=host.fqdn,
            warn_days=settings.cert_warn_days,
            now=clock.now(),
        )

    return await run_probe("smtp", host.name, settings.timeouts.smtp, body, clock)


async def submission(settings: ProbeSettings, host: MailHostTarget, clock: Clock) -> ProbeResult:
    async def body(progress: Progress) -> None:
        await probe_smtp(
            progress,
            address=host.address,
            port=settings.ports.submission,
            helo_name=settings.helo_name,
            context=verifying_context(settings.ca_file),
            cert_name=settings.client_name,
            warn_days=settings.cert_warn_days,
            now=clock.now(),
            login=settings.probe_user.login(),
        )

    return await run_probe("submission", host.name, settings.timeouts.submission, body, clock)


async def imap(
    settings: ProbeSettings, host: MailHostTarget, clock: Clock, *, implicit_tls: bool
) -> ProbeResult:
    async def body(progress: Progress) -> None:
        await probe_imap(
            progress,
            address=host.address,
            port=settings.ports.imaps if implicit_tls else settings.ports.imap,
            implicit_tls=implicit_tls,
            context=verifying_context(settings.ca_file),
            cert_name=settings.client_name,
            warn_days=settings.cert_warn_days,
            now=clock.now(),
            login=settings.probe_user.login(),
        )

    name = "imaps" if implicit_tls else "imap-starttls"
    return await run_probe(name, host.name, settings.timeouts.imap, body, clock)


async def probe_service(
    name: str, settings: ProbeSettings, host: MailHostTarget, clock: Clock
) -> ProbeResult:
    if name == "smtp":
        return await smtp(settings, host, clock)
    if name == "submission":
        return await submission(settings, host, clock)
    if name in ("imaps", "imap-starttls"):
        return await imap(settings, host, clock, implicit_tls=name == "imaps")
    raise ValueError(f"unknown service probe {name!r}")
