"""The `[probes]` section: how the controller (and witnesses) probe the mail hosts.

Targets are not listed here: they are the pair's hosts (`[pair]`, addresses from
`dns.mail_hosts`), whose roles change at each failover.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.fields import Reader, Table, join
from orchestrator.config.secrets import Secret

DEFAULT_PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ProbesConfig:
    client_name: str  # the name clients use (587/993/143 certificates must match it)
    helo_name: str
    probe_user: str
    probe_password: Secret
    ca_file: str | None
    cert_warn_days: float
    timeout: float  # each service probe's own timeout
    canary_domain: str | None
    canary_nameservers: tuple[str, ...]  # resolvers for the canary's MX lookup; () = system
    canary_every: float  # seconds between canary rounds (each sends one message)


def parse_probes(reader: Reader, raw: Table, path: str = "probes") -> ProbesConfig:
    known = {"client_name", "helo_name", "probe_user", "probe_password", "ca_file",
             "cert_warn_days", "timeout", "canary_domain", "canary_nameservers",
             "canary_every"}  # fmt: skip
    reader.reject_unknown(raw, known, path)
    user = reader.string(raw, "probe_user", path)
    if user and "@" not in user:
        reader.problem(join(path, "probe_user"), "must be a mail address (user@domain)")
    ca_file = raw.get("ca_file")
    if ca_file is not None:
        ca_file = reader.string(raw, "ca_file", path)
        if ca_file and not Path(ca_file).is_file():
            reader.problem(join(path, "ca_file"), f"{ca_file} does not exist")
    canary = raw.get("canary_domain")
    return ProbesConfig(
        client_name=reader.string(raw, "client_name", path),
        helo_name=reader.string(raw, "helo_name", path, default=socket.getfqdn()),
        probe_user=user,
        probe_password=reader.secret(raw, "probe_password", path),
        ca_file=ca_file or None,
        cert_warn_days=reader.number(raw, "cert_warn_days", path, 14.0, 0.0, 365.0),
        timeout=reader.number(raw, "timeout", path, DEFAULT_PROBE_TIMEOUT, 0.1, 60.0),
        canary_domain=reader.string(raw, "canary_domain", path) if canary is not None else None,
        canary_nameservers=tuple(reader.strings(raw, "canary_nameservers", path)),
        canary_every=reader.number(raw, "canary_every", path, 60.0, 1.0, 86400.0),
    )
