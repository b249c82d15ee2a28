"""What the probes need to know: targets, the probe user, timeouts and limits.

These will be a section of the controller's mxctl.toml; until the loader carries it, the
lab builds them from its state (`labtargets.py`). Secrets arrive resolved, as `Secret`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.config.secrets import Secret
from orchestrator.remote import SshAccess


@dataclass(frozen=True)
class MailHostTarget:
    name: str  # mx1
    fqdn: str  # mx1.example.test: the MX name its port-25 certificate must be valid for
    address: str
    role: str  # primary | standby
    ssh: SshAccess | None = None


@dataclass(frozen=True)
class ProbeUser:
    address: str
    password: Secret

    def login(self) -> tuple[str, str]:
        return (self.address, self.password.reveal())


@dataclass(frozen=True)
class Timeouts:
    """Seconds; each probe stops at its own and reports `timeout` at the step it was at."""

    smtp: float = 5.0
    submission: float = 5.0
    imap: float = 5.0
    host_state: float = 10.0
    canary_delivery: float = 30.0  # from the MX's 250 to the message being in the INBOX
    canary_replication: float = 30.0  # from the primary seeing it to the standby seeing it


@dataclass(frozen=True)
class Ports:
    smtp: int = 25
    submission: int = 587
    imaps: int = 993
    imap: int = 143


@dataclass(frozen=True)
class HostLimits:
    """When the host-state probe calls a host unhealthy."""

    mail_volume: str = "/var/vmail"
    min_free_percent: float = 10.0
    max_queue_age: float = 3600.0  # seconds the oldest queued message may wait
    max_queue_size: int = 1000


@dataclass(frozen=True)
class CanarySettings:
    domain: str  # the canary goes through this domain's MX, as an outside MTA would
    nameservers: tuple[str, ...]  # resolvers for the MX lookup; empty: the system's
    sender: str  # envelope sender, in a domain that resolves
    poll_interval: float = 0.05


@dataclass(frozen=True)
class ParitySettings:
    """What `mxctl check` compares between the two hosts and against DNS."""

    domains: tuple[str, ...]
    dkim_selector: str
    dkim_key_path: str  # on the mail hosts; only its public half leaves the host
    nameservers: tuple[str, ...]  # where the MX/SPF/DKIM records are read; empty: system


@dataclass(frozen=True)
class ProbeSettings:
    hosts: tuple[MailHostTarget, ...]
    client_name: str  # mail.example.test: the name clients use for 587/993/143
    probe_user: ProbeUser
    helo_name: str  # what we say in EHLO; a resolvable FQDN of the probing host
    ca_file: str | None = None  # None: the system's CA bundle
    cert_warn_days: float = 14.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    ports: Ports = field(default_factory=Ports)
    limits: HostLimits = field(default_factory=HostLimits)
    canary: CanarySettings | None = None
    parity: ParitySettings | None = None

    def host(self, name: str) -> MailHostTarget:
        for target in self.hosts:
            if target.name == name:
                return target
        raise KeyError(name)

    def with_role(self, role: str) -> MailHostTarget | None:
        return next((h for h in self.hosts if h.role == role), None)
