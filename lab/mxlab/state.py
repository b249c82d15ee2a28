"""What a running lab tells its clients, written to `<state dir>/lab.json`.

This is the contract between the lab and everything that uses it (inventories/lab.py, the
tests, the demo): addresses, roles, SSH credentials and the TSIG key, all by file path.
Secrets are referenced by path (0600 files), never copied into lab.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.errors import LabError
from orchestrator.remote import SshAccess, SshTarget

DEFAULT_STATE_DIR = Path("/var/lib/mxctl-lab")
DEFAULT_CACHE_DIR = Path("/var/cache/mxctl-lab")


def state_dir() -> Path:
    return Path(os.environ.get("MXCTL_LAB_DIR", str(DEFAULT_STATE_DIR)))


def cache_dir() -> Path:
    return Path(os.environ.get("MXCTL_LAB_CACHE", str(DEFAULT_CACHE_DIR)))


@dataclass(frozen=True)
class LabHost:
    name: str  # short name: ns1, ns2, mx1, mx2, sender
    fqdn: str  # e.g. mx1.example.test
    address: str  # IPv4 on the lab bridge
    role: str  # dns-primary | dns-secondary | mail | sender
    netns: str  # network namespace name under /run/netns
    mac: str


@dataclass(frozen=True)
class LabState:
    name: str
    subnet: str  # e.g. 10.254.77.0/24
    bridge: str
    gateway: str  # the machine's own address on the lab bridge
    zones: list[str]
    hosts: dict[str, LabHost]
    ssh_user: str
    ssh_key: str  # path to the private key (0600)
    known_hosts: str  # path to a known_hosts file pinning every host key
    tsig_name: str
    tsig_algorithm: str
    tsig_secret_file: str  # path to a 0600 file holding the base64 secret only
    ca_cert: str = ""  # lab CA certificate (PEM), for TLS verification
    ca_key: str = ""  # lab CA private key (0600), used only by deploys of the lab
    extra: dict[str, str] = field(default_factory=dict)

    def host(self, name: str) -> LabHost:
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts))
            raise LabError(f"no lab host named {name!r} (lab hosts: {known})") from None

    def ssh_target(self, name: str, known_hosts: str | None = None) -> SshTarget:
        """How to reach a lab host over SSH, its key pinned by the lab's known_hosts."""
        host = self.host(name)
        access = SshAccess(self.ssh_user, self.ssh_key, known_hosts or self.known_hosts)
        return access.to(host.fqdn, host.address)

    def nameservers(self) -> list[LabHost]:
        return [h for h in self.hosts.values() if h.role.startswith("dns-")]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        hosts = {name: LabHost(**h) for name, h in raw.pop("hosts").items()}
        return cls(hosts=hosts, **raw)


def lab_json_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / "lab.json"


def load_lab_state(directory: Path | None = None) -> LabState:
    """Read the running lab's description; a clear error when no lab is up."""
    path = lab_json_path(directory)
    try:
        return LabState.from_json(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab is up ({path} missing): run `mxctl lab up` as root") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(f"{path} is unreadable ({exc}): run `mxctl lab down` then up") from None
