"""Renew what is due: decide (pure), issue with retries, install, journal, alert.

A failed renewal never touches the installed certificate: it is retried `attempts` times
`retry_wait` apart (a DNS provider that is down for a minute must not cost a renewal),
then journaled as an alert and sent to the webhooks. With renewal at two thirds of the
lifetime the alert comes weeks before the old certificate expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.issuer import AcmeIssuer
from orchestrator.certs.renewal import CertFacts, RenewalDecision, renewal_due
from orchestrator.certs.store import install, new_private_key_pem, read_installed
from orchestrator.clock import Clock
from orchestrator.config.certs_section import CertsConfig
from orchestrator.controller.journal import Journal
from orchestrator.errors import CertError, DnsError, MxctlError

log = logging.getLogger(__name__)

RecordsFactory = Callable[[], ChallengeRecords]  # fresh provider per attempt
Installed = Callable[[str], None]  # called with the certificate name once it is stored


@dataclass(frozen=True)
class CertStatus:
    name: str
    names: tuple[str, ...]
    facts: CertFacts | None
    decision: RenewalDecision

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "names": list(self.names),
            "installed": self.facts.to_json() if self.facts else None,
            "due": self.decision.due,
            "reason": self.decision.reason,
        }

    def describe(self) -> str:
        due = "RENEW" if self.decision.due else "ok"
        return f"{self.name} [{', '.join(self.names)}]: {due}: {self.decision.reason}"


@dataclass(frozen=True)
class RenewResult:
    name: str
    outcome: str  # renewed | not-due | failed
    reason: str
    attempts: int = 0
    facts: CertFacts | None = None  # what is installed afterwards
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "reason": self.reason,
            "attempts": self.attempts,
            "installed": self.facts.to_json() if self.facts else None,
            "error": self.error,
        }

    def describe(self) -> str:
        tail = f" after {self.attempts} attempt(s): {self.error}" if self.error else ""
        return f"{self.name}: {self.outcome} ({self.reason}){tail}"


def cert_status(config: CertsConfig, clock: Clock, force: bool = False) -> list[CertStatus]:
    now = clock.now()
    found = []
    for name, names in sorted(config.certificates.items()):
        facts = read_installed(config.store, name)
        found.append(
            CertStatus(name, names, facts, renewal_due(facts, frozenset(names), now, force))
        )
    return found


class Renewer:
    def __init__(
        self,
        config: CertsConfig,
        issuer: AcmeIssuer,
        records: RecordsFactory,
        clock: Clock,
        journal: Journal | None = None,
        webhooks: tuple[str, ...] = (),
        webhook_timeout: float = 5.0,
        installed: Installed | None = None,
    ) -> None:
        self.config = config
        self.issuer = issuer
        self.records = records
        self.clock = clock
        self.journal = journal
        self.webhooks = webhooks
        self.webhook_timeout = webhook_timeout
        self.installed = installed

    def renew(self, force: bool = False, only: str | None = None) -> list[RenewResult]:
        results = []
        for status in cert_status(self.config, self.clock, force):
            if only is not None and status.name != only:
                continue
            if not status.decision.due:
                results.append(RenewResult(status.name, "not-due", status.decision.reason))
                continue
            results.append(self._renew_one(status))
        return results

    def _renew_one(self, status: CertStatus) -> RenewResult:
        attempts = 0

        def attempt() -> CertFacts:
            nonlocal attempts
            attempts += 1
            key_pem = new_private_key_pem()
            issued = self.issuer.issue(status.names, key_pem, self.records())
            install(self.config.store, status.name, issued.chain_pem, key_pem)
            return issued.facts

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.attempts),
            wait=tenacity.wait_fixed(self.config.retry_wait),
            retry=tenacity.retry_if_exception_type((CertError, DnsError)),
            sleep=self.clock.sleep,
            before_sleep=lambda state: log.warning(
                "renewing %s failed (attempt %d): %s",
                status.name,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "",
            ),
            reraise=True,
        )
        try:
            facts = retrying(attempt)
        except (CertError, DnsError) as exc:
            return self._failed(status, attempts, str(exc))
        self._record("certificate", status.name, "renewed", status.decision.reason, facts)
        if self.installed is not None:
            try:
                self.installed(status.name)
            except MxctlError as exc:
                # Stored but not on its host, which still serves the old certificate:
                # alert; `mxctl cert renew --force --name` or the deploy pushes it again.
                reason = f"{status.name} renewed but not installed on its host: {exc}"
                self._record("alert", status.name, "cert-install-failed", reason, facts)
                self._notify(status.name, reason, facts)
                return RenewResult(
                    status.name, "failed", status.decision.reason, attempts, facts, str(exc)
                )
        return RenewResult(status.name, "renewed", status.decision.reason, attempts, facts)

    def _failed(self, status: CertStatus, attempts: int, error: str) -> RenewResult:
        kept = status.facts
        expiry = kept.not_after.isoformat() if kept else "none installed"
        reason = (
            f"renewing {status.name} failed {attempts} time(s), old certificate kept "
            f"(expires {expiry}): {error}"
        )
        self._record("alert", status.name, "cert-renewal-failed", reason, kept)
        self._notify(status.name, reason, kept)
        return RenewResult(status.name, "failed", status.decision.reason, attempts, kept, error)

    def _record(
        self, kind: str, subject: str, state: str, reason: str, facts: CertFacts | None
    ) -> None:
        log.info("%s %s: %s", subject, state, reason)
        if self.journal is not None:
            evidence = {"certificate": facts.to_json() if facts else None}
            self.journal.record(self.clock.now(), kind, subject, state, reason, evidence)

    def _notify(self, name: str, reason: str, kept: CertFacts | None) -> None:
        payload = {
            "event": "cert_renewal_failed",
            "certificate": name,
            "reason": reason,
            "installed": kept.to_json() if kept else None,
        }
        for url in self.webhooks:
            try:
                httpx.post(url, json=payload, timeout=self.webhook_timeout).raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("certificate alert webhook %s failed: %s", url, exc)
