"""Load `mxctl.toml` once, validate every section, report every problem at once.

A section is a parser `(reader, table, path) -> value` registered in SECTIONS; later
issues add `pair`, `probes`, `policy`, `hooks` the same way. Unknown top-level keys are
problems too, so a typo in a section name is caught instead of silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.config import controller_section as cs
from orchestrator.config.certs_section import CertsConfig, parse_certs
from orchestrator.config.cluster_section import ClusterConfig, parse_cluster
from orchestrator.config.cycle import CycleLimits, cycle_problems
from orchestrator.config.dns_section import DnsConfig, parse_dns
from orchestrator.config.fields import Reader, Table
from orchestrator.config.maintenance_section import MaintenanceConfig, parse_maintenance
from orchestrator.config.probes_section import ProbesConfig, parse_probes
from orchestrator.errors import ConfigError
from orchestrator.remote import SshAccess

T = TypeVar("T")
DEFAULT_CONFIG_PATH = Path("/etc/mxctl/mxctl.toml")
CONFIG_ENV = "MXCTL_CONFIG"

SectionParser = Callable[[Reader, Table, str], Any]
SECTIONS: dict[str, SectionParser] = {
    "dns": parse_dns,
    "pair": cs.parse_pair,
    "ssh": cs.parse_ssh,
    "policy": cs.parse_policy,
    "witnesses": cs.parse_witnesses,
    "hooks": cs.parse_hooks,
    "notify": cs.parse_notify,
    "api": cs.parse_api,
    "probes": parse_probes,
    "maintenance": parse_maintenance,
    "cluster": parse_cluster,
    "certs": parse_certs,
}
# Sections with usable defaults when absent.
DEFAULTS: dict[str, Table] = {
    "policy": {},
    "hooks": {},
    "notify": {},
    "api": {},
    "witnesses": {},
    "maintenance": {},
}


@dataclass(frozen=True)
class MxctlConfig:
    path: Path
    sections: Mapping[str, Any]

    @property
    def dns(self) -> DnsConfig:
        value = self.sections.get("dns")
        if not isinstance(value, DnsConfig):
            raise ConfigError(f"{self.path}: dns: missing section [dns]")
        return value

    def section(self, name: str, kind: type[T]) -> T:
        value = self.sections.get(name)
        if not isinstance(value, kind):
            raise ConfigError(f"{self.path}: {name}: missing section [{name}]")
        return value

    @property
    def pair(self) -> cs.PairConfig:
        return self.section("pair", cs.PairConfig)

    @property
    def ssh(self) -> SshAccess:
        return self.section("ssh", SshAccess)

    @property
    def policy(self) -> cs.PolicyConfig:
        return self.section("policy", cs.PolicyConfig)

    @property
    def witnesses(self) -> list[cs.WitnessConfig]:
        value = self.sections.get("witnesses", [])
        return list(value) if isinstance(value, list) else []

    @property
    def hooks(self) -> cs.HooksConfig:
        return self.section("hooks", cs.HooksConfig)

    @property
    def notify(self) -> cs.NotifyConfig:
        return self.section("notify", cs.NotifyConfig)

    @property
    def probes(self) -> ProbesConfig:
        return self.section("probes", ProbesConfig)

    @property
    def maintenance(self) -> MaintenanceConfig:
        return self.section("maintenance", MaintenanceConfig)

    @property
    def cluster(self) -> ClusterConfig | None:
        """None: no [cluster] section, the controller runs alone (no etcd)."""
        value = self.sections.get("cluster")
        return value if isinstance(value, ClusterConfig) else None

    @property
    def certs(self) -> CertsConfig:
        return self.section("certs", CertsConfig)

    @property
    def api(self) -> cs.ApiConfig:
        return self.section("api", cs.ApiConfig)


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    required: tuple[str, ...] = (),
    only: Collection[str] | None = None,
) -> MxctlConfig:
    """Read and validate the config; ConfigError lists every problem with its path.

    `only` names the sections a command uses: the others are not parsed (nor their
    secrets resolved), so `mxctl dns show` works before the first deploy has created the
    probe password. Section names are still checked, so a typo is never ignored."""
    path = path or default_config_path(environ)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found: pass --config PATH or set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # TOML is UTF-8 by definition; a file saved as Latin-1 fails here, not in tomllib.
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None
    return parse_config(text, path, environ, required, only)


def parse_config(
    text: str,
    path: Path = Path("<config>"),
    environ: Mapping[str, str] | None = None,
    required: tuple[str, ...] = (),
    only: Collection[str] | None = None,
) -> MxctlConfig:
    wanted = set(SECTIONS) if only is None else {*only, *required}
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    reader = Reader(environ)
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        parser = SECTIONS.get(key)
        if parser is None:
            reader.problem(key, f"unknown section (known: {', '.join(sorted(SECTIONS))})")
        elif key not in wanted:
            continue
        elif not isinstance(value, dict):
            reader.problem(key, "must be a table")
        else:
            sections[key] = parser(reader, value, key)
    for key, default in DEFAULTS.items():
        if key not in raw and key in wanted:
            sections[key] = SECTIONS[key](reader, default, key)
    for key in required:
        if key not in raw:
            reader.problem(key, f"missing section [{key}]")
    if "dns" in sections and "maintenance" in sections:
        sections["maintenance"] = _fit_low_ttl(
            reader,
            sections["dns"],
            sections["maintenance"],
            "low_ttl" in raw.get("maintenance", {}),
        )
    if "pair" in sections and "dns" in sections:
        _check_pair_hosts(reader, sections["pair"], sections["dns"])
    if "certs" in sections and "dns" in sections:
        _check_cert_zones(reader, sections["certs"], sections["dns"])
    if "pair" in sections and "maintenance" in sections:
        _check_window_hosts(reader, sections["pair"], sections["maintenance"])
    if "policy" in sections:
        _check_cycle(reader, sections["policy"], sections.get("probes"), sections.get("cluster"))
    if reader.problems:
        raise ConfigError([f"{path}: {p}" for p in reader.problems])
    return MxctlConfig(path, sections)


def _check_pair_hosts(reader: Reader, pair: cs.PairConfig, dns: DnsConfig) -> None:
    for role in ("primary", "standby"):
        name = getattr(pair, role)
        if name and dns.mail_host(name) is None:
            known = ", ".join(sorted(dns.mail_hosts)) or "none"
            reader.problem(f"pair.{role}", f"{name} is not in dns.mail_hosts ({known})")


def _check_cert_zones(reader: Reader, certs: CertsConfig, dns: DnsConfig) -> None:
    """DNS-01 is answered through the provider: every name must be in one of its zones."""
    for cert, names in certs.certificates.items():
        for name in names:
            if dns.zone_of(name + ".") is None:
                reader.problem(
                    f"certs.certificates.{cert}",
                    f"{name} is in none of dns.zones ({', '.join(dns.zones)}): its DNS-01 "
                    "challenge could not be answered",
                )


def _fit_low_ttl(
    reader: Reader, dns: DnsConfig, maint: MaintenanceConfig, explicit: bool
) -> MaintenanceConfig:
    """The planned switch's TTL must be one the provider accepts. A low_ttl set in the
    file below the provider's floor is a problem; the default rises to the floor."""
    problem = dns.provider.ttl_problem(maint.low_ttl)
    if problem is None:
        return maint
    if explicit:
        reader.problem("maintenance.low_ttl", problem)
        return maint
    return dataclasses.replace(maint, low_ttl=max(maint.low_ttl, dns.provider.min_ttl))


def _check_window_hosts(reader: Reader, pair: cs.PairConfig, maint: MaintenanceConfig) -> None:
    for window in maint.windows:
        if window.host and window.host not in (pair.primary, pair.standby):
            where = f"maintenance.windows.{window.name}.host"
            reader.problem(where, f"{window.host} is neither pair.primary nor pair.standby")


def _check_cycle(
    reader: Reader,
    policy: cs.PolicyConfig,
    probes: ProbesConfig | None,
    cluster: ClusterConfig | None,
) -> None:
    """A cycle must fit its interval's probes, and a cluster leader's lease must outlast
    the longest cycle (orchestrator/config/cycle.py). A command that does not read
    [probes] checks only the interval."""
    timeout = probes.timeout if probes is not None else None
    ttl = cluster.lease_ttl if cluster is not None else None
    margin = cluster.safety_margin if cluster is not None else 0.0
    for where, problem in cycle_problems(CycleLimits(timeout, policy.interval, ttl, margin)):
        reader.problem(where, problem)
