"""End-to-end canary: a message with a unique token sent through the domain's MX, timed as
it appears by IMAP on the primary (delivery latency) and on the standby (replication lag).

The probe user's INBOX is watched on both hosts before the message is sent, so logins do
not count towards either figure. Its copies are expunged afterwards on each host that has
one (expunges replicate; doing it on both also cleans a standby that was cut off).
When the standby has not seen the message in time, the canary reports the standby as
`lagging`; the primary's delivery stands on its own result.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from orchestrator.clock import Clock
from orchestrator.errors import ProbeError
from orchestrator.probes.imap import ImapSession, open_imap, quote
from orchestrator.probes.mxsend import (
    CANARY_HEADER,
    canary_message,
    resolve_exchange,
    send_through_mx,
)
from orchestrator.probes.result import ErrorClass, ProbeResult, Progress
from orchestrator.probes.runner import classify, run_probe
from orchestrator.probes.settings import MailHostTarget, ProbeSettings
from orchestrator.probes.tlscheck import verifying_context

log = logging.getLogger(__name__)


@dataclass
class MailboxWatch:
    """One host's view of the probe user's INBOX during a canary round."""

    host: MailHostTarget
    progress: Progress = field(default_factory=Progress)
    session: ImapSession | None = None
    seen_at: float | None = None  # monotonic
    failure: tuple[ErrorClass, str] | None = None
    desynced: bool = False  # a command was cut off mid-reply: the session is unusable

    def fail(self, exc: Exception) -> None:
        self.failure = classify(exc, self.progress.step)

    async def open(self, settings: ProbeSettings, clock: Clock) -> None:
        try:
            async with asyncio.timeout(settings.timeouts.imap):
                self.session = await open_imap(
                    self.progress,
                    address=self.host.address,
                    port=settings.ports.imaps,
                    implicit_tls=True,
                    context=verifying_context(settings.ca_file),
                    cert_name=settings.client_name,
                    warn_days=0,  # expiry is the IMAP probe's business; the canary needs mail
                    now=clock.now(),
                    login=settings.probe_user.login(),
                )
                await self.session.select()
        except Exception as exc:
            self.fail(exc)

    async def wait_for(self, token: str, deadline: DeadlineFn, clock: Clock, poll: float) -> None:
        """Poll until the token shows up or `deadline()` (monotonic) passes."""
        if self.session is None:
            return
        self.progress.at("wait")
        criteria = f"HEADER {CANARY_HEADER} {quote(token)}"
        try:
            while True:
                remaining = deadline() - clock.monotonic()
                if remaining <= 0:
                    return
                async with asyncio.timeout(remaining):
                    await self.session.expect_ok("noop", "NOOP")
                    uids = await self.session.uid_search(criteria)
                if uids:
                    self.seen_at = clock.monotonic()
                    return
                await clock.asleep(poll)
        except TimeoutError:
            self.desynced = True  # the deadline passed mid-poll: not seen in time
        except Exception as exc:
            self.fail(exc)

    async def clean_up(
        self, settings: ProbeSettings, clock: Clock, token: str, sweep_before: str
    ) -> None:
        """Expunge this round's canary, and those of interrupted rounds (sent before
        `sweep_before`, an IMAP date); concurrent rounds of other observers stay untouched.
        A session cut off mid-command is replaced first, so a late copy is still found."""
        try:
            if self.session is not None and self.desynced:
                self.session.connection.close()
                self.session = None
            if self.session is None and self.failure is None:
                await self.open(settings, clock)
            if self.session is None:
                return
            async with asyncio.timeout(settings.timeouts.imap):
                criteria = (
                    f"OR HEADER {CANARY_HEADER} {quote(token)} "
                    f'(HEADER {CANARY_HEADER} "" SENTBEFORE {sweep_before})'
                )
                await self.session.expunge_uids(await self.session.uid_search(criteria))
                await self.session.logout()
        except Exception:  # a leftover canary is harmless: a later round sweeps it
            log.debug("canary clean-up on %s failed", self.host.name, exc_info=True)
        finally:
            if self.session is not None:
                self.session.connection.close()


DeadlineFn = Callable[[], float]


def _result(
    probe: str, host: MailHostTarget, latency: float, progress: Progress, **kw: object
) -> ProbeResult:
    return ProbeResult(
        probe=probe,
        target=host.name,
        latency=latency,
        step=progress.step,
        details=dict(progress.details),
        **kw,  # type: ignore[arg-type]
    )


async def canary_round(settings: ProbeSettings, clock: Clock) -> list[ProbeResult]:
    """`canary-delivery` for the primary, and `canary-replication` for the standby when the
    primary received the message (without it, the standby's lag cannot be measured)."""
    canary = settings.canary
    primary, standby = settings.with_role("primary"), settings.with_role("standby")
    if canary is None or primary is None:
        raise ProbeError("the canary needs a canary section and a primary host")
    token = f"{clock.now():%Y%m%d%H%M%S}-{secrets.token_hex(6)}"
    watches = [MailboxWatch(primary), *([MailboxWatch(standby)] if standby else [])]
    await asyncio.gather(*(w.open(settings, clock) for w in watches))
    send = await _send(settings, token, clock)
    sent_at = clock.monotonic()
    results: list[ProbeResult] = []
    try:
        if not send.ok:
            return [replace(send, probe="canary-delivery", target=primary.name)]
        delivery_deadline = sent_at + settings.timeouts.canary_delivery
        primary_watch = watches[0]

        def standby_deadline() -> float:
            seen = primary_watch.seen_at
            base = seen if seen is not None else delivery_deadline
            return base + settings.timeouts.canary_replication

        await asyncio.gather(
            primary_watch.wait_for(token, lambda: delivery_deadline, clock, canary.poll_interval),
            *(
                w.wait_for(token, standby_deadline, clock, canary.poll_interval)
                for w in watches[1:]
            ),
        )
        results.append(_delivery_result(primary_watch, send, sent_at, settings))
        if len(watches) > 1 and primary_watch.seen_at is not None:
            results.append(_replication_result(watches[1], primary_watch, settings))
        return results
    finally:
        sweep = (clock.now() - timedelta(days=1)).strftime("%d-%b-%Y")
        await asyncio.gather(*(w.clean_up(settings, clock, token, sweep) for w in watches))


async def _send(settings: ProbeSettings, token: str, clock: Clock) -> ProbeResult:
    canary = settings.canary
    assert canary is not None
    recipient = settings.probe_user.address

    async def body(progress: Progress) -> None:
        progress.at("mx-lookup")
        exchange = await resolve_exchange(canary.domain, canary.nameservers, settings.timeouts.smtp)
        progress.note(token=token, mx=exchange.name, mx_address=exchange.address)
        message = canary_message(token, canary.sender, recipient, settings.helo_name, clock.now())
        await send_through_mx(
            progress,
            exchange,
            helo_name=settings.helo_name,
            sender=canary.sender,
            recipient=recipient,
            message=message,
        )

    return await run_probe("canary-send", canary.domain, settings.timeouts.smtp, body, clock)


def _delivery_result(
    watch: MailboxWatch, send: ProbeResult, sent_at: float, settings: ProbeSettings
) -> ProbeResult:
    progress = watch.progress
    progress.note(**dict(send.details), send_latency_ms=round(send.latency * 1000, 1))
    if watch.failure is not None:
        error, why = watch.failure
        return _result(
            "canary-delivery", watch.host, 0.0, progress, ok=False, error=error,
            message=f"reading {watch.host.name}'s INBOX: {why}",
        )  # fmt: skip
    if watch.seen_at is None:
        limit = settings.timeouts.canary_delivery
        return _result(
            "canary-delivery", watch.host, limit, progress, ok=False, error=ErrorClass.TIMEOUT,
            message=f"the canary accepted by {send.details.get('mx')} was not in "
            f"{watch.host.name}'s INBOX within {limit:g} s",
        )  # fmt: skip
    latency = watch.seen_at - sent_at
    progress.note(delivery_latency_ms=round(latency * 1000, 1))
    return _result("canary-delivery", watch.host, latency, progress, ok=True, message="delivered")


def _replication_result(
    standby: MailboxWatch, primary: MailboxWatch, settings: ProbeSettings
) -> ProbeResult:
    progress = standby.progress
    assert primary.seen_at is not None
    if standby.failure is not None:
        error, why = standby.failure
        return _result(
            "canary-replication", standby.host, 0.0, progress, ok=False, error=error,
            message=f"reading {standby.host.name}'s INBOX: {why}",
        )  # fmt: skip
    if standby.seen_at is None:
        limit = settings.timeouts.canary_replication
        progress.note(replication_lag_ms=None)
        return _result(
            "canary-replication", standby.host, limit, progress, ok=False,
            error=ErrorClass.LAGGING,
            message=f"{standby.host.name} had not received the canary {limit:g} s after "
            f"{primary.host.name} had it: replication is behind or broken",
        )  # fmt: skip
    # Both INBOXes are polled at the same interval, so the standby can look "first" by up
    # to one interval; a negative lag means "within the polling resolution".
    lag = max(0.0, standby.seen_at - primary.seen_at)
    progress.note(replication_lag_ms=round(lag * 1000, 1))
    return _result("canary-replication", standby.host, lag, progress, ok=True, message="replicated")
