"""The lab's mxctl.toml (render_lab_config) loads and validates, without a running lab."""

from __future__ import annotations

import os
from pathlib import Path

from mxlab.mxctl_config import render_lab_config
from mxlab.standins.dnsservers import TSIG_SECRET
from mxlab.state import LabHost, LabState

from orchestrator.config import parse_config
from orchestrator.dns.rfc2136 import Rfc2136Settings


def lab_state(tmp_path: Path) -> LabState:
    secret = tmp_path / "tsig.key"
    secret.write_text(TSIG_SECRET + "\n")
    os.chmod(secret, 0o600)
    roles = {
        "ns1": ("10.254.77.11", "dns-primary"),
        "ns2": ("10.254.77.12", "dns-secondary"),
        "mx1": ("10.254.77.21", "mail"),
        "mx2": ("10.254.77.22", "mail"),
        "sender": ("10.254.77.31", "sender"),
    }
    hosts = {
        name: LabHost(name, f"{name}.example.test", address, role, f"mxlab-{name}", "02:00")
        for name, (address, role) in roles.items()
    }
    return LabState(
        name="mxlab",
        subnet="10.254.77.0/24",
        bridge="mxlab0",
        gateway="10.254.77.1",
        zones=["example.test", "example.org"],
        hosts=hosts,
        ssh_user="root",
        ssh_key="/dev/null",
        known_hosts="/dev/null",
        tsig_name="mxctl-lab",
        tsig_algorithm="hmac-sha256",
        tsig_secret_file=str(secret),
    )


def test_lab_config_is_valid_and_complete(tmp_path: Path) -> None:
    text = render_lab_config(lab_state(tmp_path))
    assert TSIG_SECRET not in text  # referenced by file, never copied
    dns = parse_config(text, environ={}).dns
    assert isinstance(dns.provider, Rfc2136Settings)
    assert (dns.provider.server, dns.provider.port) == ("10.254.77.11", 53)
    assert dns.provider.key_name == "mxctl-lab." and dns.provider.key_secret.reveal() == TSIG_SECRET
    assert dns.zones == ("example.test.", "example.org.")
    assert [(r.name, r.rtype) for r in dns.records] == [
        ("example.test.", "MX"),
        ("example.org.", "MX"),
        ("mail.example.test.", "A"),
    ]
    assert dns.mail_hosts == {
        "mx1.example.test.": ("10.254.77.21",),
        "mx2.example.test.": ("10.254.77.22",),
    }
    assert dns.verify.nameservers == ()  # resolved from each zone's NS set
