"""The shape of the lab: which hosts, their addresses and roles, the zones they serve.

Pure data. Addresses live on a private /24 that exists only on a bridge of this machine;
lab namespaces get no default route, so nothing addressed to the lab can leave it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from orchestrator.errors import LabError

DEFAULT_LAB = "mxlab"
# A second lab can run beside the default one (e.g. while another is in use):
# MXCTL_LAB_NAME=mxlab2 MXCTL_LAB_SUBNET=10.254.78.0/24 MXCTL_LAB_DIR=/var/lib/mxctl-lab2.
LAB_NAME = os.environ.get("MXCTL_LAB_NAME", DEFAULT_LAB)
if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", LAB_NAME):
    raise ValueError(f"MXCTL_LAB_NAME={LAB_NAME!r}: use 1-8 lowercase letters and digits")
BRIDGE = f"{LAB_NAME}0"
SUBNET = ipaddress.IPv4Network(os.environ.get("MXCTL_LAB_SUBNET", "10.254.77.0/24"))
# Machine-side ends of the hosts' links (interface names are at most 15 bytes).
VETH_PREFIX = "mxl-" if LAB_NAME == DEFAULT_LAB else f"{LAB_NAME}-"
GATEWAY = SUBNET.network_address + 1  # this machine's own address on the bridge
PRIMARY_ZONE = "example.test"
ZONES = (PRIMARY_ZONE, "example.org")
RECORD_TTL = 300
CLIENT_TTL = 60  # the client-facing `mail` name, as mxctl's dns.client_ttl default
TSIG_NAME = "mxctl-lab"
TSIG_ALGORITHM = "hmac-sha256"


@dataclass(frozen=True)
class HostSpec:
    name: str
    role: str  # dns-primary | dns-secondary | resolver | acme | mail | sender | client | backup
    host_octet: int
    layer: str  # "" for the bare base image, else the name of an image layer on top

    @property
    def address(self) -> str:
        return str(SUBNET.network_address + self.host_octet)

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{PRIMARY_ZONE}"

    @property
    def netns(self) -> str:
        return f"{LAB_NAME}-{self.name}"

    @property
    def veth(self) -> str:
        # The machine-side end of the host's link (interface names are at most 15 bytes).
        return f"{VETH_PREFIX}{self.name}"[:15]

    @property
    def machine(self) -> str:
        """The container's name for systemd-nspawn (unique across labs on this machine)."""
        return self.name if LAB_NAME == DEFAULT_LAB else f"{LAB_NAME}-{self.name}"

    @property
    def mac(self) -> str:
        # Deterministic: a fresh random MAC after a restart leaves peers with stale ARP
        # entries for ~17 s; a fixed one makes a restarted host reachable at once.
        return f"02:6d:78:4c:00:{self.host_octet:02x}"


HOSTS: tuple[HostSpec, ...] = (
    HostSpec("ns1", "dns-primary", 11, "dns"),
    HostSpec("ns2", "dns-secondary", 12, "dns"),
    # A caching resolver, as a remote MTA or a mail user resolves through one.
    HostSpec("resolver", "resolver", 13, "resolver"),
    # Let's Encrypt's Pebble, the ACME server the pair's certificates come from (acmehost.py).
    HostSpec("acme", "acme", 14, "acme"),
    HostSpec("mx1", "mail", 21, ""),
    HostSpec("mx2", "mail", 22, ""),
    # The outside world: a remote MTA, and a mail user's machine (IMAP/submission client).
    HostSpec("sender", "sender", 31, ""),
    HostSpec("client", "client", 32, ""),
    # An off-site backup target: sshd with a chrooted SFTP-only account (the mail deploy's
    # restic repository lives there).
    HostSpec("backup", "backup", 41, ""),
)

# Controller hosts (issue 15): each runs an etcd member and `mxctl watch`, as a small site
# would co-locate them (three machines it already runs for the controllers carry the
# consensus store too, so losing one costs one vote of each, never two). Not part of the
# default lab: `mxctl lab controllers up` adds them to a running lab for the cluster tests
# only, so the other lab tests do not pay for three more hosts.
CONTROLLER_HOSTS: tuple[HostSpec, ...] = tuple(
    HostSpec(f"ctl{i}", "controller", 50 + i, "") for i in (1, 2, 3)
)

# Layers built on top of the base image, each a list of Debian packages.
LAYERS: dict[str, tuple[str, ...]] = {
    "dns": ("bind9",),
    "resolver": ("unbound",),
    "acme": ("pebble",),
}

# Hosts of the outside world resolve through the caching resolver; the lab's own hosts
# (mail hosts, nameservers) ask the authoritative servers, as a site's own hosts would.
BEHIND_CACHE = ("sender", "client")


def host_spec(name: str) -> HostSpec:
    for spec in HOSTS + CONTROLLER_HOSTS:
        if spec.name == name:
            return spec
    known = ", ".join(h.name for h in HOSTS + CONTROLLER_HOSTS)
    raise LabError(f"no lab host named {name!r} (lab hosts: {known})")


def nameserver_addresses() -> list[str]:
    return [h.address for h in HOSTS if h.role.startswith("dns-")]


def resolver_addresses(spec: HostSpec) -> list[str]:
    """What `spec` puts in its resolv.conf."""
    if spec.role in BEHIND_CACHE:
        return [h.address for h in HOSTS if h.role == "resolver"]
    return nameserver_addresses()


def zone_text(zone: str, serial: int = 1) -> str:
    """The initial zone file: NS, an A record for every lab host, `mail` -> mx1, and MX
    mx1 with mx2 as backup MX."""
    ns_hosts = [h for h in HOSTS if h.role.startswith("dns-")]
    mx1 = host_spec("mx1")
    lines = [
        f"$ORIGIN {zone}.",
        f"$TTL {RECORD_TTL}",
        f"@ IN SOA ns1.{PRIMARY_ZONE}. hostmaster.{zone}. ({serial} 60 30 86400 60)",
    ]
    lines += [f"@ IN NS {h.fqdn}." for h in ns_hosts]
    # The steady state mxctl keeps: mx1 primary, the healthy standby mx2 its backup MX.
    lines.append(f"@ IN MX 10 {mx1.fqdn}.")
    lines.append(f"@ IN MX 20 {host_spec('mx2').fqdn}.")
    if zone == PRIMARY_ZONE:
        lines += [f"{h.name} IN A {h.address}" for h in HOSTS]
        lines.append(f"mail {CLIENT_TTL} IN A {mx1.address}")
    return "\n".join(lines) + "\n"
