"""`mxctl check`: is the standby a faithful copy of the primary, and does DNS fit both?

Same users, same DKIM public key (and the one DNS publishes), certificates valid for the
names clients use on both hosts, an MX that names one of the pair, and an SPF policy that
lets both hosts send (after a failover the standby sends the domain's mail).
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from orchestrator.clock import Clock
from orchestrator.errors import ProbeError
from orchestrator.probes import spf
from orchestrator.probes.hoststate import split_sections
from orchestrator.probes.result import ErrorClass, Progress
from orchestrator.probes.services import SERVICE_PROBES, probe_service
from orchestrator.probes.settings import MailHostTarget, ParitySettings, ProbeSettings
from orchestrator.probes.sshstate import run_ssh_command


@dataclass(frozen=True)
class Finding:
    check: str  # users | dkim-key | certificates | mx | spf | dkim-record
    subject: str  # a host (mx2) or a domain (example.test)
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "subject": self.subject, "ok": self.ok, "detail": self.detail}


# The controller's fence marker (orchestrator.controller.fencing.MARKER; a test checks).
FENCE_MARKER = "/etc/mxctl/fenced"


@dataclass(frozen=True)
class HostFacts:
    users: frozenset[str] | None
    dkim_public: str | None  # base64 SubjectPublicKeyInfo, as in a DKIM record's p=
    problem: str = ""
    fenced: bool | None = None  # None: not known (the host did not answer)


def facts_script(parity: ParitySettings) -> str:
    key = shlex.quote(parity.dkim_key_path)
    return (
        "echo '### users'; doveadm user '*' 2>&1; echo \"### rc users $?\"\n"
        f"echo '### dkim'; openssl pkey -in {key} -pubout 2>&1; echo \"### rc dkim $?\"\n"
        f"echo '### fenced'; test -e {FENCE_MARKER}; echo \"### rc fenced $?\"\n"
    )


def parse_facts(output: str) -> HostFacts:
    sections = split_sections(output)
    users = sections.get("users")
    dkim = sections.get("dkim")
    problems = [
        f"{name}: exit {s.rc}: {s.text.strip()[:200]}"
        for name, s in (("users", users), ("dkim", dkim))
        if s is not None and s.rc != 0
    ]
    user_set = None
    if users is not None and users.rc == 0:
        user_set = frozenset(line.strip() for line in users.text.splitlines() if line.strip())
    public = None
    if dkim is not None and dkim.rc == 0:
        public = "".join(line for line in dkim.text.splitlines() if not line.startswith("-----"))
    fence = sections.get("fenced")
    fenced = None if fence is None else fence.rc == 0
    return HostFacts(user_set, public or None, "; ".join(problems), fenced)


def dkim_p(texts: list[str]) -> str | None:
    """The p= tag of a DKIM key record (whitespace removed), or None."""
    for text in texts:
        tags = dict(part.strip().split("=", 1) for part in text.split(";") if "=" in part)
        if tags.get("v", "DKIM1").strip() == "DKIM1" and "p" in tags:
            return "".join(tags["p"].split())
    return None


class Dns:
    def __init__(self, nameservers: tuple[str, ...], timeout: float) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = list(nameservers)
        self._resolver.lifetime = timeout

    async def _answer(self, name: str, rdtype: str) -> list[Any]:
        try:
            return list(await self._resolver.resolve(name, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise ProbeError(f"DNS lookup of {name} {rdtype} failed: {exc}") from None

    async def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode() for r in await self._answer(name, "TXT")]

    async def a(self, name: str) -> list[str]:
        return [r.address for r in await self._answer(name, "A")]

    async def mx(self, name: str) -> list[str]:
        rows = sorted(await self._answer(name, "MX"), key=lambda r: r.preference)
        return [str(r.exchange).rstrip(".") for r in rows]


async def _host_facts(settings: ProbeSettings, host: MailHostTarget) -> HostFacts:
    assert settings.parity is not None
    if host.ssh is None:
        return HostFacts(None, None, "no SSH access configured")
    script = facts_script(settings.parity)
    timeout = settings.timeouts.host_state
    try:
        output = await asyncio.wait_for(
            asyncio.to_thread(run_ssh_command, host.ssh, host.address, script, timeout, Progress()),
            timeout * 2,
        )
    except Exception as exc:
        return HostFacts(None, None, f"cannot read over SSH: {type(exc).__name__}: {exc}")
    return parse_facts(output.stdout)


def _compare_hosts(
    primary: MailHostTarget, standby: MailHostTarget, facts: dict[str, HostFacts]
) -> list[Finding]:
    a, b = facts[primary.name], facts[standby.name]
    pair = f"{primary.name}+{standby.name}"
    found = [
        Finding("facts", h.name, False, facts[h.name].problem)
        for h in (primary, standby)
        if facts[h.name].problem
    ]
    if a.users is not None and b.users is not None:
        only_a, only_b = sorted(a.users - b.users), sorted(b.users - a.users)
        detail = (
            f"{len(a.users)} users on both"
            if not (only_a or only_b)
            else (
                f"only on {primary.name}: {', '.join(only_a) or '-'}; "
                f"only on {standby.name}: {', '.join(only_b) or '-'}"
            )
        )
        found.append(Finding("users", pair, not (only_a or only_b), detail))
    if a.dkim_public and b.dkim_public:
        same = a.dkim_public == b.dkim_public
        detail = "same DKIM key on both" if same else "the hosts sign with different DKIM keys"
        found.append(Finding("dkim-key", pair, same, detail))
    return found


async def _certificates(settings: ProbeSettings, clock: Clock) -> list[Finding]:
    found = []
    for host in settings.hosts:
        results = await asyncio.gather(
            *(probe_service(name, settings, host, clock) for name in SERVICE_PROBES)
        )
        bad = [r for r in results if r.error in (ErrorClass.CERTIFICATE, ErrorClass.TLS)]
        unknown = [r for r in results if not r.ok and r not in bad]
        if bad or unknown:
            detail = "; ".join(f"{r.probe}: {r.error}: {r.message}" for r in bad + unknown)
        else:
            days = min(float(r.details.get("cert_days_left") or 0) for r in results)
            detail = (
                f"valid for {host.fqdn} (25) and {settings.client_name} (587, 993, 143); "
                f"first expiry in {days:.0f} days"
            )
        found.append(Finding("certificates", host.name, not (bad or unknown), detail))
    return found


async def _dns_records(
    settings: ProbeSettings, facts: dict[str, HostFacts], resolver: Dns
) -> list[Finding]:
    parity = settings.parity
    assert parity is not None
    names = {h.fqdn for h in settings.hosts}
    by_fqdn = {h.fqdn: h.name for h in settings.hosts}
    keys = {f.dkim_public for f in facts.values() if f.dkim_public}
    found: list[Finding] = []
    for domain in parity.domains:
        exchanges = await resolver.mx(domain)
        ok = bool(exchanges) and all(x in names for x in exchanges)
        detail = f"MX {', '.join(exchanges) or 'missing'}" + (
            "" if ok else f"; expected one of {', '.join(sorted(names))}"
        )
        # A fenced host refuses mail and a dead one cannot take it: neither belongs in MX.
        listed = [facts.get(by_fqdn.get(x, "")) for x in exchanges]
        for exchange, fact in zip(exchanges, listed, strict=True):
            if fact is not None and fact.fenced:
                ok, detail = False, f"{detail}; lists {exchange}, which is fenced"
            elif fact is not None and fact.users is None and fact.problem:
                ok, detail = False, f"{detail}; lists {exchange}, which did not answer"
        found.append(Finding("mx", domain, ok, detail))
        try:
            lookups = (resolver.txt, resolver.a, resolver.mx)
            denied = [
                h.name for h in settings.hosts
                if not await spf.authorizes(domain, h.address, *lookups)
            ]  # fmt: skip
            record = spf.spf_record(await resolver.txt(domain))
            if record is None:
                found.append(Finding("spf", domain, False, "no single v=spf1 record"))
            else:
                detail = (
                    "allows both hosts" if not denied else f"does not allow {', '.join(denied)}"
                )
                found.append(Finding("spf", domain, not denied, f"{detail}: {record}"))
        except spf.SpfUnsupported as exc:
            found.append(Finding("spf", domain, False, f"not evaluated: {exc}"))
        name = f"{parity.dkim_selector}._domainkey.{domain}"
        published = dkim_p(await resolver.txt(name))
        if published is None:
            found.append(Finding("dkim-record", domain, False, f"no DKIM key at {name}"))
        else:
            ok = keys == {published}
            detail = (
                f"{name} matches the hosts' key" if ok else f"{name} differs from the hosts' key"
            )
            found.append(Finding("dkim-record", domain, ok, detail))
    return found


async def parity_check(settings: ProbeSettings, clock: Clock) -> list[Finding]:
    parity = settings.parity
    primary, standby = settings.with_role("primary"), settings.with_role("standby")
    if parity is None or primary is None or standby is None:
        raise ProbeError("`check` needs a primary, a standby and the parity settings")
    hosts = (primary, standby)
    facts_list, certs = await asyncio.gather(
        asyncio.gather(*(_host_facts(settings, h) for h in hosts)),
        _certificates(settings, clock),
    )
    facts = {h.name: f for h, f in zip(hosts, facts_list, strict=True)}
    resolver = Dns(parity.nameservers, settings.timeouts.smtp)
    records = await _dns_records(settings, facts, resolver)
    return [*_compare_hosts(primary, standby, facts), *certs, *records]
