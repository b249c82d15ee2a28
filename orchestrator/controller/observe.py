"""Observations: probe both hosts from here, fetch the witnesses' reports, one snapshot.

A host is `failed` for an observer when its SMTP (25) or IMAPS (993) probe fails; a
certificate merely close to expiry is an alert, not a reason to move mail. A witness
whose report cannot be fetched, or is older than a few probe intervals, abstains
(UNKNOWN) rather than voting, so a dead witness can never make a primary look dead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from orchestrator.clock import Clock
from orchestrator.config.controller_section import WitnessConfig
from orchestrator.config.dns_section import DnsConfig
from orchestrator.config.probes_section import ProbesConfig
from orchestrator.controller.model import Health, ObserverReport, Snapshot
from orchestrator.probes.result import ErrorClass, ProbeResult
from orchestrator.probes.services import probe_service
from orchestrator.probes.settings import (
    MailHostTarget,
    ProbeSettings,
    ProbeUser,
    Timeouts,
)
from orchestrator.remote import SshAccess

log = logging.getLogger(__name__)
HEALTH_PROBES = ("smtp", "imaps")


def short_name(fqdn: str) -> str:
    return fqdn.rstrip(".").split(".")[0]


def probe_settings(
    probes: ProbesConfig, dns: DnsConfig, ssh: SshAccess | None, primary: str, standby: str
) -> ProbeSettings:
    """Probe targets for the pair as it is now (roles change at each failover)."""
    hosts = []
    for fqdn, role in ((primary, "primary"), (standby, "standby")):
        found = dns.mail_host(fqdn)
        addresses = found[1] if found else ()
        address = next((a for a in addresses if ":" not in a), addresses[0] if addresses else "")
        access = ssh
        hosts.append(MailHostTarget(short_name(fqdn), fqdn.rstrip("."), address, role, access))
    timeouts = Timeouts(
        smtp=probes.timeout,
        submission=probes.timeout,
        imap=probes.timeout,
        # A canary runs in the background; 10 s tells "lagging" from "slow" well enough.
        canary_delivery=10.0,
        canary_replication=10.0,
    )
    return ProbeSettings(
        hosts=tuple(hosts),
        client_name=probes.client_name,
        probe_user=ProbeUser(probes.probe_user, probes.probe_password),
        helo_name=probes.helo_name,
        ca_file=probes.ca_file,
        cert_warn_days=probes.cert_warn_days,
        timeouts=timeouts,
    )


def host_health(results: Sequence[ProbeResult]) -> Health:
    for result in results:
        if result.ok:
            continue
        days_left = result.details.get("cert_days_left")
        expiring = isinstance(days_left, int | float) and days_left > 0
        if result.error is ErrorClass.CERTIFICATE and expiring:
            continue  # valid but expiring soon: alert material, the host still serves
        return Health.FAILED
    return Health.UP if results else Health.UNKNOWN


async def probe_pair(settings: ProbeSettings, clock: Clock) -> dict[str, list[ProbeResult]]:
    """One round of the health probes against both hosts, all concurrently."""
    jobs = [
        (host.fqdn, probe_service(name, settings, host, clock))
        for host in settings.hosts
        for name in HEALTH_PROBES
    ]
    results = await asyncio.gather(*(job for _, job in jobs))
    by_host: dict[str, list[ProbeResult]] = {host.fqdn: [] for host in settings.hosts}
    for (fqdn, _), result in zip(jobs, results, strict=True):
        by_host[fqdn].append(result)
    return by_host


@dataclass(frozen=True)
class LocalRound:
    report: ObserverReport
    results: dict[str, list[ProbeResult]]

    def to_json(self, at: datetime) -> dict[str, Any]:
        return {
            "observer": self.report.observer,
            "taken_at": at.isoformat(),
            "hosts": {h: v.value for h, v in self.report.hosts.items()},
            "replication_lag_s": self.report.replication_lag_s,
            "results": {h: [r.to_json() for r in rs] for h, rs in self.results.items()},
        }


def local_round(observer: str, settings: ProbeSettings, clock: Clock) -> LocalRound:
    results = asyncio.run(probe_pair(settings, clock))
    hosts = {fqdn: host_health(rs) for fqdn, rs in results.items()}
    return LocalRound(ObserverReport(observer, hosts), results)


@functools.cache  # loaded once, not at every cycle
def client_tls(ca_file: str) -> ssl.SSLContext:
    """Verifies a server against `ca_file` (the system's CAs when empty)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def fetch_witness(witness: WitnessConfig, now: datetime, max_age: float) -> ObserverReport:
    """A witness's latest report; UNKNOWN for every host when missing, stale or unreadable."""
    try:
        reply = httpx.get(
            witness.url,
            headers={"Authorization": f"Bearer {witness.token.reveal()}"},
            timeout=witness.timeout,
            verify=client_tls(witness.ca_file),
        )
        reply.raise_for_status()
        raw = reply.json()
        taken = datetime.fromisoformat(raw["taken_at"])
        if (now - taken).total_seconds() > max_age:
            log.warning("witness %s: report is %s old, ignored", witness.name, now - taken)
            return ObserverReport(witness.name, {})
        hosts = {str(h): Health(v) for h, v in raw["hosts"].items()}
        lag = raw.get("replication_lag_s")
        return ObserverReport(witness.name, hosts, float(lag) if lag is not None else None)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("witness %s: no usable report (%s): it abstains", witness.name, exc)
        return ObserverReport(witness.name, {})


def snapshot(
    local: LocalRound, witnesses: Sequence[WitnessConfig], now: datetime, max_age: float
) -> Snapshot:
    reports = [local.report] + [fetch_witness(w, now, max_age) for w in witnesses]
    return Snapshot(now, tuple(reports))
