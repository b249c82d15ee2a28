"""The controller's sections of mxctl.toml: the pair, policy, witnesses, hooks, the API.

Host facts are not repeated here: the pair names two of `dns.mail_hosts` (whose addresses
the DNS section already holds); `[ssh]` says how to reach them, with host keys pinned in
a known_hosts file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.config import exposure
from orchestrator.config.fields import Reader, Table, join
from orchestrator.config.secrets import Secret
from orchestrator.controller.model import Policy
from orchestrator.remote import SshAccess


@dataclass(frozen=True)
class PairConfig:
    primary: str  # a name in dns.mail_hosts, e.g. mx1.example.test
    standby: str
    state_dir: Path  # journal and controller state


@dataclass(frozen=True)
class PolicyConfig:
    interval: float  # seconds between cycles
    failure_threshold: int  # consecutive failed cycles before the primary is dead
    max_replication_lag: float  # seconds; above it, no automatic promotion
    anti_flap: float  # seconds automatic failover stays blocked after one (or until ack)
    failover_deadline: float  # seconds the DNS rewrite + verification may take
    max_client_downtime: float = 300.0  # seconds; `mxctl check` warns when the bound exceeds it
    # The standby's own view of the primary (asked over SSH) counts as an observer.
    standby_observer: bool = True
    retry_backoff: float = 10.0  # first wait after a failed failover attempt (doubles)
    retry_backoff_max: float = 300.0  # the longest wait between attempts
    unhealthy_after_errors: int = 3  # /health is 503 when this many cycles in a row raised


@dataclass(frozen=True)
class TlsFiles:
    """A certificate and key a service presents; both empty: plain HTTP (loopback only)."""

    cert: str = ""
    key: str = ""

    def __bool__(self) -> bool:
        return bool(self.cert and self.key)


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    url: str  # e.g. https://witness1.example.net:8427/report
    token: Secret
    timeout: float
    ca_file: str = ""  # verifies the witness's certificate; "": the system's CAs
    tls: TlsFiles = TlsFiles()  # what `mxctl witness` serves, on the witness's host
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class HooksConfig:
    pre_failover: tuple[tuple[str, ...], ...]  # argv lists; a non-zero exit aborts
    post_failover: tuple[tuple[str, ...], ...]
    timeout: float


@dataclass(frozen=True)
class NotifyConfig:
    webhooks: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class ApiConfig:
    listen: str
    port: int
    token: Secret | None  # None: mutating endpoints are off
    tls: TlsFiles = TlsFiles()  # required off loopback unless allow_insecure_http
    ca_file: str = ""  # signed tls.cert; `mxctl status` verifies its controller with it
    allow_insecure_http: bool = False


def _file(
    reader: Reader, table: Table, key: str, path: str, private: bool, optional: bool = False
) -> str:
    if optional and key not in table:
        return ""
    value = reader.string(table, key, path)
    if not value:
        return ""
    file = Path(value)
    where = join(path, key)
    if not file.is_absolute():
        reader.problem(where, f"{value} must be an absolute path")
    elif not file.is_file():
        reader.problem(where, f"{value} does not exist")
    elif private and file.stat().st_mode & 0o077:
        reader.problem(where, f"{value} must not be readable by group or others: chmod 600")
    return value


def _absolute(reader: Reader, table: Table, key: str, path: str) -> str:
    value = reader.string(table, key, path) if key in table else ""
    if value and not value.startswith("/"):
        reader.problem(join(path, key), f"{value} must be an absolute path")
    return value


def parse_pair(reader: Reader, raw: Table, path: str = "pair") -> PairConfig:
    reader.reject_unknown(raw, {"primary", "standby", "state_dir"}, path)
    primary = reader.string(raw, "primary", path).rstrip(".").lower()
    standby = reader.string(raw, "standby", path).rstrip(".").lower()
    if primary and primary == standby:
        reader.problem(join(path, "standby"), "must differ from pair.primary")
    state_dir = reader.string(raw, "state_dir", path, default="/var/lib/mxctl")
    if state_dir and not state_dir.startswith("/"):
        reader.problem(join(path, "state_dir"), "must be an absolute path")
    return PairConfig(primary, standby, Path(state_dir))


def parse_ssh(reader: Reader, raw: Table, path: str = "ssh") -> SshAccess:
    reader.reject_unknown(raw, {"user", "key_file", "known_hosts", "port", "timeout"}, path)
    return SshAccess(
        reader.string(raw, "user", path, default="root"),
        _file(reader, raw, "key_file", path, private=True),
        _file(reader, raw, "known_hosts", path, private=False),
        reader.integer(raw, "port", path, 22, 1, 65535),
        reader.number(raw, "timeout", path, 10.0, 0.5, 120.0),
    )


def parse_policy(reader: Reader, raw: Table, path: str = "policy") -> PolicyConfig:
    known = {"interval", "failure_threshold", "max_replication_lag", "anti_flap",
             "failover_deadline", "max_client_downtime", "standby_observer", "retry_backoff",
             "retry_backoff_max", "unhealthy_after_errors"}  # fmt: skip
    reader.reject_unknown(raw, known, path)
    return PolicyConfig(
        reader.number(raw, "interval", path, 5.0, 0.2, 3600.0),
        # The decision rules' defaults live with them (controller.model.Policy), once.
        reader.integer(raw, "failure_threshold", path, Policy.failure_threshold, 1, 100),
        reader.number(raw, "max_replication_lag", path, Policy.max_replication_lag_s, 0.0, 86400.0),
        reader.number(raw, "anti_flap", path, Policy.anti_flap_s, 0.0, 7 * 86400.0),
        reader.number(raw, "failover_deadline", path, 120.0, 1.0, 3600.0),
        reader.number(raw, "max_client_downtime", path, 300.0, 1.0, 86400.0),
        reader.boolean(raw, "standby_observer", path, True),
        reader.number(raw, "retry_backoff", path, 10.0, 0.0, 3600.0),
        reader.number(raw, "retry_backoff_max", path, 300.0, 0.0, 86400.0),
        reader.integer(raw, "unhealthy_after_errors", path, 3, 1, 1000),
    )


def _tls_files(reader: Reader, table: Table, path: str, elsewhere: bool = False) -> TlsFiles:
    """`tls_cert` and `tls_key`; `elsewhere`: files on another host (a witness's, named in
    the controller's config too), so only their form is checked here."""
    if elsewhere:
        tls = TlsFiles(*(_absolute(reader, table, key, path) for key in ("tls_cert", "tls_key")))
    else:
        tls = TlsFiles(
            _file(reader, table, "tls_cert", path, private=False, optional=True),
            _file(reader, table, "tls_key", path, private=True, optional=True),
        )
    for key, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if table.get(key) and not table.get(other):
            reader.problem(join(path, other), f"required with {join(path, key)}")
    return tls


WITNESS_KEYS = {"url", "token", "timeout", "ca_file", "tls_cert", "tls_key",
                "allow_insecure_http"}  # fmt: skip


def parse_witnesses(reader: Reader, raw: Table, path: str = "witnesses") -> list[WitnessConfig]:
    """`[witnesses.NAME]` tables: each a vantage point whose report counts as an observer.

    The report is read with the witness's bearer token, so the URL is https:// (or on
    loopback) unless `allow_insecure_http = true` says otherwise."""
    witnesses = []
    for name in raw:
        where = join(path, name)
        table = reader.table(raw, name, path)
        reader.reject_unknown(table, WITNESS_KEYS, where)
        url = reader.string(table, "url", where)
        insecure = reader.boolean(table, "allow_insecure_http", where, False)
        if url and not url.startswith(("http://", "https://")):
            reader.problem(join(where, "url"), "must be an http(s) URL")
        elif problem := exposure.url_problem(url, join(where, "token"), where, insecure):
            reader.problem(join(where, "url"), problem)
        witnesses.append(
            WitnessConfig(
                name,
                url,
                reader.secret(table, "token", where),
                reader.number(table, "timeout", where, 2.0, 0.1, 60.0),
                _file(reader, table, "ca_file", where, private=False, optional=True),
                _tls_files(reader, table, where, elsewhere=True),
                insecure,
            )
        )
    return witnesses


def _commands(reader: Reader, raw: Table, key: str, path: str) -> tuple[tuple[str, ...], ...]:
    value = raw.get(key, [])
    where = join(path, key)
    ok = isinstance(value, list) and all(
        isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd) for cmd in value
    )
    if not ok:
        reader.problem(where, 'must be a list of argv lists, e.g. [["/usr/local/bin/hook", "x"]]')
        return ()
    return tuple(tuple(cmd) for cmd in value)


def parse_hooks(reader: Reader, raw: Table, path: str = "hooks") -> HooksConfig:
    reader.reject_unknown(raw, {"pre_failover", "post_failover", "timeout"}, path)
    return HooksConfig(
        _commands(reader, raw, "pre_failover", path),
        _commands(reader, raw, "post_failover", path),
        reader.number(raw, "timeout", path, 30.0, 1.0, 600.0),
    )


def parse_notify(reader: Reader, raw: Table, path: str = "notify") -> NotifyConfig:
    """Webhooks get no bearer token; one that carries a password in its URL is held to the
    witnesses' rule (https://, or loopback, unless allow_insecure_http)."""
    reader.reject_unknown(raw, {"webhooks", "timeout", "allow_insecure_http"}, path)
    hooks = reader.strings(raw, "webhooks", path)
    insecure = reader.boolean(raw, "allow_insecure_http", path, False)
    for i, url in enumerate(hooks):
        where = join(join(path, "webhooks"), i)
        if not url.startswith(("http://", "https://")):
            reader.problem(where, "must be an http(s) URL")
        elif "@" in urlsplit(url).netloc and (
            problem := exposure.url_problem(url, "the password in its URL", path, insecure)
        ):
            reader.problem(where, problem)
    return NotifyConfig(tuple(hooks), reader.number(raw, "timeout", path, 5.0, 0.1, 60.0))


def parse_api(reader: Reader, raw: Table, path: str = "api") -> ApiConfig:
    """The controller's HTTP API: loopback by default; anywhere else only over TLS."""
    known = {"listen", "port", "token", "tls_cert", "tls_key", "ca_file", "allow_insecure_http"}
    reader.reject_unknown(raw, known, path)
    listen = reader.string(raw, "listen", path, default="127.0.0.1")
    tls = _tls_files(reader, raw, path)
    insecure = reader.boolean(raw, "allow_insecure_http", path, False)
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        reader.problem(join(path, "listen"), f"{listen!r} is not an IP address")
    else:
        if problem := exposure.listen_problem(path, listen, bool(tls), insecure):
            reader.problem(join(path, "listen"), problem)
    token = reader.secret(raw, "token", path) if "token" in raw else None
    return ApiConfig(
        listen,
        reader.integer(raw, "port", path, 8426, 0, 65535),
        token,
        tls,
        _file(reader, raw, "ca_file", path, private=False, optional=True),
        insecure,
    )
