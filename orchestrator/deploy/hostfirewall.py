"""Files for the mail hosts' own firewall and self-fence guard, from the validated pair.

- firewall.nft: the doveadm/replication port accepts the peer's addresses only (reset for
  everyone else). A table of its own that fencing never touches, so it holds fenced or not.
- guard-closed.nft: the guard's table with every client port closed, loaded at boot
  before the network and before Postfix and Dovecot; the guard opens what DNS allows.
- guard.json: what the guard needs to know (see orchestrator/hostguard/settings.py).
"""

from __future__ import annotations

import ipaddress
import json

from orchestrator.controller import fencing
from orchestrator.deploy.spec import MailPair
from orchestrator.hostguard import install
from orchestrator.hostguard.hostnet import closed_ruleset

PEER_PRIORITY = -20


def firewall_rules(pair: MailPair, host_name: str) -> str:
    peer = pair.peer(host_name)
    port = pair.replication_port
    v4 = [a for a in peer.addresses if ipaddress.ip_address(a).version == 4]
    v6 = [a for a in peer.addresses if ipaddress.ip_address(a).version == 6]
    accept = [
        f"        tcp dport {port} {family} saddr {{ {', '.join(addrs)} }} accept"
        for family, addrs in (("ip", v4), ("ip6", v6))
        if addrs
    ]
    return "\n".join(
        [
            f"# Managed by mxctl (deploys/firewall.py): replication port {port} for "
            f"{peer.fqdn} only.",
            f"table inet {install.PEER_TABLE}",
            f"delete table inet {install.PEER_TABLE}",
            f"table inet {install.PEER_TABLE} {{",
            "    chain input {",
            f"        type filter hook input priority {PEER_PRIORITY}; policy accept;",
            *accept,
            f"        tcp dport {port} reject with tcp reset",
            "    }",
            "}",
            "",
        ]
    )


def guard_closed_rules() -> str:
    return "# Managed by mxctl: client ports closed until mxctl-guard confirms.\n" + (
        closed_ruleset(install.TABLE)
    )


def guard_settings(pair: MailPair, host_name: str) -> str:
    me = pair.host(host_name)
    settings = {
        "fqdn": me.fqdn,
        "addresses": list(me.addresses),
        "nameservers": list(pair.guard.nameservers),
        "mx_names": list(pair.domains),
        "client_names": [pair.client_name],
        "interval": pair.guard.interval,
        "lease": pair.guard.lease,
        "timeout": pair.guard.timeout,
        "propagation": pair.guard.propagation,
        "fence_marker": fencing.MARKER,
        "fence_rules": fencing.RULES_FILE,
        "fence_unit": fencing.UNIT,
        "role_file": install.ROLE_FILE,
        "status_file": install.STATUS_FILE,
        "table": install.TABLE,
    }
    return json.dumps(settings, indent=2) + "\n"
