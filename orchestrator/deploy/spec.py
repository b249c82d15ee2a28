"""The mail pair as the inventory describes it, validated before any host is touched.

`load_pair(hosts)` takes each mail host's inventory data (host data merged with group data,
as pyinfra hands it over), checks everything a deploy needs, resolves every secret reference
on the deploying machine, and returns a `MailPair`. Every problem is reported at once, each
naming its field (`mail[mx1].mail_role`, `mail_users[2].password`) and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.fields import Reader
from orchestrator.config.secrets import Secret
from orchestrator.deploy import dkim, tlscerts
from orchestrator.deploy.backup_spec import BackupSpec, load_backup
from orchestrator.deploy.guardspec import (
    GUARD_FIELDS,
    GuardSpec,
    check_disjoint,
    read_addresses,
    read_guard,
)
from orchestrator.errors import ConfigError

ROLES = ("primary", "standby")
HostData = Mapping[str, Any]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_PART = re.compile(r"^[a-z0-9!#%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#%&'*+/=?^_`{|}~-]+)*$")
_SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOVEADM_PASSWORD = re.compile(r'^[^\s"\\]{16,}$')

# Tunables with their defaults, the one place they are written: an inventory (host or group
# data) or `pyinfra --data key=value` overrides them. Changing one and re-running the
# deploy reloads only the service it belongs to.
DEFAULTS: dict[str, int] = {
    # TCP port of the doveadm server the two hosts replicate through (peer-only).
    "mail_replication_port": 12345,
    # Postfix: largest message accepted, in bytes (50 MiB).
    "postfix_message_size_limit": 52428800,
    # Dovecot: concurrent IMAP connections per user and client address.
    "dovecot_mail_max_userip_connections": 20,
    # mxctl-dsync (Dovecot 2.4 hosts): seconds between sweeps of every user, and how many
    # `doveadm sync` run at once.
    "dsync_sweep_every": 300,
    "dsync_workers": 2,
}

# Settings every pair shares, with the field that holds them.
SHARED_FIELDS = (
    "mail_domains",
    "mail_client_name",
    "mail_users",
    "mail_probe_user",
    "mail_aliases",
    "mail_replication_port",
    "mail_replication_password",
    "mail_dkim_selector",
    "mail_dkim_key",
    "mail_tls_ca",
    "postfix_message_size_limit",
    "dovecot_mail_max_userip_connections",
    *GUARD_FIELDS,
    "mail_backup",
    "dsync_sweep_every",
    "dsync_workers",
)


@dataclass(frozen=True)
class MailUser:
    address: str
    password: Secret
    probe: bool = False

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class MailHost:
    name: str  # the inventory's name for the host
    fqdn: str
    role: str  # primary | standby
    tls_cert: Path  # on the deploying machine
    tls_key: Path
    addresses: tuple[str, ...] = ()  # the host's own (mail_addresses)


@dataclass(frozen=True)
class Tunables:
    message_size_limit: int
    max_userip_connections: int
    dsync_sweep_every: int = DEFAULTS["dsync_sweep_every"]
    dsync_workers: int = DEFAULTS["dsync_workers"]


@dataclass(frozen=True)
class MailPair:
    primary: MailHost
    standby: MailHost
    domains: tuple[str, ...]
    client_name: str
    users: tuple[MailUser, ...]  # the probe user included, flagged
    aliases: tuple[tuple[str, str], ...]
    replication_port: int
    replication_password: Secret
    dkim_selector: str
    dkim_key: Secret
    tunables: Tunables
    guard: GuardSpec
    tls_ca: Path | None = None  # CA bundle the hosts verify each other with (None: system's)
    backup: BackupSpec | None = None  # None: the inventory configures no backups

    @property
    def hosts(self) -> tuple[MailHost, MailHost]:
        return (self.primary, self.standby)

    def host(self, name: str) -> MailHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def peer(self, name: str) -> MailHost:
        return self.standby if self.host(name) is self.primary else self.primary

    @property
    def probe_user(self) -> MailUser:
        return next(u for u in self.users if u.probe)


def is_hostname(name: str) -> bool:
    """A fully qualified DNS name: two labels or more, letters/digits/hyphens, no trailing dot."""
    if not name or len(name) > 253 or name != name.lower():
        return False
    labels = name.split(".")
    return len(labels) >= 2 and all(_LABEL.match(lb) for lb in labels) and not labels[-1].isdigit()


def load_pair(
    hosts: Mapping[str, HostData],
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> MailPair:
    """Validate the pair and resolve its secrets; ConfigError listing every problem."""
    problems = Reader(environ)
    if len(hosts) != 2:
        names = ", ".join(sorted(hosts)) or "none"
        problems.problem("mail", f"the pair needs exactly two hosts in group `mail`, found {names}")
        raise ConfigError(problems.problems)

    read = [_read_host(name, data, problems) for name, data in hosts.items()]
    parsed_hosts = [h for h, _ in read]
    _check_roles(parsed_hosts, problems)
    shared = _shared_data(hosts, problems)

    domains = _read_domains(shared.get("mail_domains"), problems)
    client_name = _read_hostname(shared.get("mail_client_name"), "mail_client_name", problems)
    users = _read_users(shared.get("mail_users"), domains, problems)
    probe = _read_user(shared.get("mail_probe_user"), "mail_probe_user", domains, problems)
    if probe is not None:
        probe = MailUser(probe.address, probe.password, probe=True)
        if any(u.address == probe.address for u in users):
            problems.problem(
                "mail_probe_user.address", "must be a dedicated user, not in mail_users"
            )
    all_users = (*users, *([probe] if probe else []))
    aliases = _read_aliases(shared.get("mail_aliases"), domains, all_users, problems)
    port = _read_int(
        shared.get("mail_replication_port", DEFAULTS["mail_replication_port"]),
        "mail_replication_port",
        1,
        65535,
        problems,
    )
    repl_password = _read_secret(
        shared.get("mail_replication_password"), "mail_replication_password", problems
    )
    if repl_password.reveal() and not _DOVEADM_PASSWORD.match(repl_password.reveal()):
        problems.problem(
            "mail_replication_password",
            "must be 16+ characters without spaces, quotes or backslashes "
            "(it goes into Dovecot's configuration)",
        )
    selector = _read_selector(shared.get("mail_dkim_selector"), problems)
    dkim_key = _read_secret(shared.get("mail_dkim_key"), "mail_dkim_key", problems)
    if dkim_key.reveal():
        error = dkim.check_private_key(dkim_key.reveal())
        if error:
            problems.problem("mail_dkim_key", error)
    tunables = Tunables(
        message_size_limit=_read_int(
            shared.get("postfix_message_size_limit", DEFAULTS["postfix_message_size_limit"]),
            "postfix_message_size_limit",
            1 << 20,
            1 << 30,
            problems,
        ),
        max_userip_connections=_read_int(
            shared.get(
                "dovecot_mail_max_userip_connections",
                DEFAULTS["dovecot_mail_max_userip_connections"],
            ),
            "dovecot_mail_max_userip_connections",
            1,
            10_000,
            problems,
        ),
        dsync_sweep_every=_read_int(
            shared.get("dsync_sweep_every", DEFAULTS["dsync_sweep_every"]),
            "dsync_sweep_every",
            10,
            86_400,
            problems,
        ),
        dsync_workers=_read_int(
            shared.get("dsync_workers", DEFAULTS["dsync_workers"]), "dsync_workers", 1, 16, problems
        ),
    )
    tls_ca = _read_ca_bundle(shared.get("mail_tls_ca"), problems, check_files)
    guard = read_guard(shared, problems)
    if all(h.addresses for h in parsed_hosts):
        check_disjoint({h.name: h.addresses for h in parsed_hosts}, problems)
    backup = load_backup(shared.get("mail_backup"), problems)
    if check_files and client_name:
        for h, paths_given in read:
            if h.fqdn and paths_given:
                for problem in tlscerts.check_pair(h.tls_cert, h.tls_key, (h.fqdn, client_name)):
                    problems.problem(f"mail[{h.name}].mail_tls_cert", problem)

    if problems.problems:
        raise ConfigError(problems.problems)
    primary = next(h for h in parsed_hosts if h.role == "primary")
    standby = next(h for h in parsed_hosts if h.role == "standby")
    assert probe is not None
    return MailPair(
        primary=primary,
        standby=standby,
        domains=tuple(domains),
        client_name=client_name,
        users=all_users,
        aliases=aliases,
        replication_port=port,
        replication_password=repl_password,
        dkim_selector=selector,
        dkim_key=dkim_key,
        tunables=tunables,
        guard=guard,
        tls_ca=tls_ca,
        backup=backup,
    )


def _read_host(name: str, data: HostData, problems: Reader) -> tuple[MailHost, bool]:
    """The host, and whether its certificate paths are there to be checked."""
    role = data.get("mail_role")
    if role is None:
        problems.problem(f"mail[{name}].mail_role", "required: primary or standby")
        role = ""
    elif role not in ROLES:
        problems.problem(
            f"mail[{name}].mail_role", f"unknown role {role!r}: must be primary or standby"
        )
        role = ""
    fqdn = data.get("mail_fqdn", name)
    if not isinstance(fqdn, str) or not is_hostname(fqdn):
        problems.problem(
            f"mail[{name}].mail_fqdn",
            f"{fqdn!r} is not a fully qualified host name (set mail_fqdn, e.g. mx1.example.com)",
        )
        fqdn = ""
    paths: list[Path] = []
    paths_given = True
    for key in ("mail_tls_cert", "mail_tls_key"):
        value = data.get(key)
        if not isinstance(value, str) or not value.startswith("/"):
            problems.problem(
                f"mail[{name}].{key}", "required: an absolute path on the deploying machine"
            )
            paths.append(Path("/nonexistent"))
            paths_given = False
        else:
            paths.append(Path(value))
    addresses = read_addresses(data.get("mail_addresses"), f"mail[{name}].mail_addresses", problems)
    host = MailHost(
        name=name,
        fqdn=fqdn,
        role=str(role),
        tls_cert=paths[0],
        tls_key=paths[1],
        addresses=addresses,
    )
    return host, paths_given


def _check_roles(hosts: Sequence[MailHost], problems: Reader) -> None:
    for role in ROLES:
        holders = [h.name for h in hosts if h.role == role]
        if len(holders) > 1:
            problems.problem(
                "mail_role",
                f"two {role} hosts ({', '.join(holders)}): exactly one primary and one standby",
            )
    fqdns = [h.fqdn for h in hosts if h.fqdn]
    if len(fqdns) == 2 and fqdns[0] == fqdns[1]:
        problems.problem("mail_fqdn", f"both hosts are named {fqdns[0]}: each needs its own name")


def _shared_data(hosts: Mapping[str, HostData], problems: Reader) -> dict[str, Any]:
    """Settings both hosts must agree on (they are normally group data)."""
    (name_a, data_a), (name_b, data_b) = hosts.items()
    shared: dict[str, Any] = {}
    for key in SHARED_FIELDS:
        a, b = data_a.get(key), data_b.get(key)
        if a != b:
            problems.problem(
                key, f"differs between {name_a} and {name_b}: set it once, in the group data"
            )
        if a is not None:  # absent: the reader's default (DEFAULTS) or its "required"
            shared[key] = a
    return shared


def _read_domains(value: object, problems: Reader) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        problems.problem("mail_domains", "required: a non-empty list of domain names")
        return []
    domains: list[str] = []
    for i, item in enumerate(value):
        field = f"mail_domains[{i}]"
        if not isinstance(item, str) or not is_hostname(item):
            problems.problem(field, f"{item!r} is not a valid lower-case domain name")
        elif item in domains:
            problems.problem(field, f"{item} is listed twice")
        else:
            domains.append(item)
    return domains


def _read_hostname(value: object, field: str, problems: Reader) -> str:
    if not isinstance(value, str) or not is_hostname(value):
        problems.problem(field, f"{value!r} is not a fully qualified host name")
        return ""
    return value


def _read_int(value: object, field: str, low: int, high: int, problems: Reader) -> int:
    # `pyinfra --data key=value` passes strings; accept their integer form.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.problem(field, f"must be an integer between {low} and {high}")
        return low
    if not low <= value <= high:
        problems.problem(field, f"{value} is out of range: must be between {low} and {high}")
        return low
    return value


def _read_secret(value: object, field: str, problems: Reader) -> Secret:
    if not isinstance(value, str) or not value:
        problems.problem(field, "required: a secret reference, `env:NAME` or `file:/path` (0600)")
        return Secret("", "")
    return problems.resolve(value, field)


def _read_address(value: object, field: str, domains: Sequence[str], problems: Reader) -> str:
    if not isinstance(value, str) or value.count("@") != 1:
        problems.problem(field, f"{value!r} is not a mail address (local@domain)")
        return ""
    local, _, domain = value.partition("@")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        problems.problem(field, f"{value!r}: invalid local part (lower case, no spaces or colons)")
        return ""
    if domains and domain not in domains:
        problems.problem(field, f"{value!r}: domain {domain} is not in mail_domains")
        return ""
    if not is_hostname(domain):
        problems.problem(field, f"{value!r}: {domain!r} is not a valid domain name")
        return ""
    return value


def _read_user(
    value: object,
    field: str,
    domains: Sequence[str],
    problems: Reader,
) -> MailUser | None:
    if not isinstance(value, Mapping):
        problems.problem(field, "required: a mapping with `address` and `password` (a reference)")
        return None
    unknown = sorted(set(value) - {"address", "password"})
    if unknown:
        problems.problem(field, f"unknown keys {', '.join(unknown)} (known: address, password)")
    address = _read_address(value.get("address"), f"{field}.address", domains, problems)
    if value.get("password") is None:
        problems.problem(f"{field}.password", "missing: a reference, `env:NAME` or `file:/path`")
        return None
    password = _read_secret(value.get("password"), f"{field}.password", problems)
    return MailUser(address, password) if address else None


def _read_users(value: object, domains: Sequence[str], problems: Reader) -> list[MailUser]:
    if not isinstance(value, list | tuple) or not value:
        problems.problem("mail_users", "required: a non-empty list of {address, password} mappings")
        return []
    users: list[MailUser] = []
    for i, item in enumerate(value):
        user = _read_user(item, f"mail_users[{i}]", domains, problems)
        if user is None:
            continue
        if any(u.address == user.address for u in users):
            problems.problem(f"mail_users[{i}].address", f"{user.address} is listed twice")
            continue
        users.append(user)
    return users


def _read_aliases(
    value: object, domains: Sequence[str], users: Sequence[MailUser], problems: Reader
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.problem("mail_aliases", "must be a mapping of alias address -> target address")
        return ()
    out: list[tuple[str, str]] = []
    for source, target in sorted(value.items()):
        field = f"mail_aliases[{source!r}]"
        src = _read_address(source, field, domains, problems)
        dst = _read_address(target, field, (), problems)
        if src and any(u.address == src for u in users):
            problems.problem(field, f"{src} is a mailbox; an alias cannot shadow it")
        elif src and dst:
            out.append((src, dst))
    return tuple(out)


def _read_ca_bundle(value: object, problems: Reader, check_files: bool) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        problems.problem("mail_tls_ca", "must be an absolute path to a PEM CA bundle (or unset)")
        return None
    if check_files:
        error = tlscerts.check_ca_bundle(Path(value))
        if error:
            problems.problem("mail_tls_ca", error)
    return Path(value)


def _read_selector(value: object, problems: Reader) -> str:
    if not isinstance(value, str) or not _SELECTOR.match(value):
        problems.problem("mail_dkim_selector", f"{value!r} is not a DNS label (e.g. mail, 2026a)")
        return ""
    return value
