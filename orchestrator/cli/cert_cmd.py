"""`mxctl cert status|renew`: the pair's ACME certificates, what is due, renewing them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.certs.account import load_or_create_account_key
from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.install import push_certificate, read_host_certificate
from orchestrator.certs.issuer import AcmeIssuer, AcmeServer
from orchestrator.certs.renew import Renewer, cert_status
from orchestrator.certs.renewal import CertFacts
from orchestrator.certs.store import CHAIN_FILE, KEY_FILE, cert_facts
from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config import MxctlConfig, load_config
from orchestrator.controller.journal import Journal
from orchestrator.dns.factory import make_provider, make_verifier
from orchestrator.dns.provider import BaseProvider
from orchestrator.errors import MxctlError
from orchestrator.remote import SshAccess


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cert", help="ACME certificates of the pair: status, renew")
    sub = parser.add_subparsers(dest="cert_command", metavar="CERT_COMMAND", required=True)
    for name, help_text, func in (
        ("status", "each certificate, its names, expiry and whether it is due", cmd_status),
        ("renew", "renew what is due (DNS-01), install on its host, reload", cmd_renew),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, help="mxctl.toml (default: $MXCTL_CONFIG)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        if name == "renew":
            p.add_argument("--force", action="store_true", help="renew even if not due")
            p.add_argument("--name", help="only this certificate ([certs.certificates] key)")
            p.add_argument(
                "--no-install", action="store_true", help="store only; do not push to hosts"
            )


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 1 when a mail host does not hold its certificate as stored (or cannot be read):
    the state that breaks TLS right after a failover."""
    # [dns] too, when present: a name no zone covers is reported here, not at renewal.
    config = load_config(args.config, required=("certs",), only=("certs", "dns", "ssh"))
    found = cert_status(config.certs, SYSTEM_CLOCK)
    hosts = {s.name: _on_host(config, s.name, s.facts) for s in found}
    data = [s.to_json() | {"host": hosts[s.name]} for s in found]
    lines = []
    for s in found:
        lines.append(s.describe())
        host = hosts[s.name]
        if host is not None:
            lines.append(f"  on {host['host']}: {host['state']}")
    _emit(args, {"certificates": data}, _lines(lines))
    return 1 if any(h is not None and h["state"] != "in sync" for h in hosts.values()) else 0


def _on_host(config: MxctlConfig, name: str, stored: CertFacts | None) -> dict[str, Any] | None:
    """What the mail host this certificate is named after holds, against the store."""
    host = config.dns.mail_host(name) if "dns" in config.sections else None
    if host is None or "ssh" not in config.sections:
        return None
    fqdn, addresses = host
    target = config.ssh.to(fqdn.rstrip("."), addresses[0])
    try:
        facts = cert_facts(read_host_certificate(target))
    except MxctlError as exc:
        return {"host": target.name, "state": f"unknown: {exc}", "installed": None}
    if stored is not None and facts.serial == stored.serial:
        state = "in sync"
    else:
        expires = facts.not_after.isoformat()
        state = f"differs from the store: serves serial {facts.serial} (expires {expires})"
    return {"host": target.name, "state": state, "installed": facts.to_json()}


def cmd_renew(args: argparse.Namespace) -> int:
    config = load_config(
        args.config, required=("certs", "dns"), only=("certs", "dns", "ssh", "pair", "notify")
    )
    certs = config.certs
    providers: list[BaseProvider] = []

    def records() -> ChallengeRecords:
        provider = make_provider(config.dns, SYSTEM_CLOCK)
        providers.append(provider)
        return ChallengeRecords(provider, make_verifier(config.dns, provider).wait)

    server = AcmeServer(certs.directory_url, certs.ca_bundle, certs.contact)
    issuer = AcmeIssuer(server, load_or_create_account_key(certs.account_key))
    journal = Journal(config.pair.state_dir / "journal.db") if "pair" in config.sections else None
    notify = config.notify if "notify" in config.sections else None
    renewer = Renewer(
        certs,
        issuer,
        records,
        SYSTEM_CLOCK,
        journal,
        notify.webhooks if notify else (),
        notify.timeout if notify else 5.0,
        None if args.no_install else _installer(config),
    )
    try:
        results = renewer.renew(args.force, args.name)
    finally:
        for provider in providers:
            provider.close()
        if journal is not None:
            journal.close()
    _emit(args, {"results": [r.to_json() for r in results]}, _lines(r.describe() for r in results))
    return 1 if any(r.outcome == "failed" for r in results) else 0


def _installer(config: MxctlConfig) -> Any:
    """Push a certificate named after a mail host (dns.mail_hosts) to that host."""
    ssh: SshAccess | None = config.ssh if "ssh" in config.sections else None

    def installed(name: str) -> None:
        host = config.dns.mail_host(name)
        if host is None or ssh is None:
            return  # a certificate for another use: stored only
        fqdn, addresses = host
        directory = config.certs.store / name
        target = ssh.to(fqdn.rstrip("."), addresses[0])
        push_certificate(
            target, (directory / CHAIN_FILE).read_bytes(), (directory / KEY_FILE).read_bytes()
        )

    return installed


def _lines(lines: Any) -> str:
    text = "\n".join(lines)
    return text or "no certificates configured ([certs.certificates])"
