"""What the guard does to the host: its nftables table, the link check, the self-fence.

The table lets a client port through only while two leases hold, both enforced by the
kernel whatever the guard's processes do (frozen, killed or slow):

- the port is an element of the set `leased`, added with a timeout of one lease: the
  kernel expires it on its monotonic clock, immune to wall-clock steps;
- `meta time` (the kernel's wall clock, read per packet) is before a deadline counted from
  when the guard's DNS round STARTED. A guard frozen between reading DNS and writing the
  table cannot, once thawed, open the ports on an answer older than the lease: the set
  element alone would count from the write.

Every packet of a port is matched, not only new connections, so a lapse also resets
connections accepted into a listen backlog while the host was frozen.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .rules import PORTS, PortGroup

PRIORITY = -5  # after the fence table (-10); a port must pass both
ALL_PORTS = tuple(port for group in PortGroup for port in PORTS[group])


def _ports(ports: Iterable[int]) -> str:
    return "{ " + ", ".join(str(p) for p in ports) + " }"


def ruleset(table: str, open_groups: Iterable[PortGroup], deadline: int, lease: float) -> str:
    """An nft script replacing the guard's set and chain in one transaction (atomic)."""
    lines = [
        f"table inet {table} {{",
        "    set leased {",
        "        type inet_service; flags timeout;",
        "    }",
        "    chain input {",
        f"        type filter hook input priority {PRIORITY}; policy accept;",
        "    }",
        "}",
        f"flush set inet {table} leased",
        f"flush chain inet {table} input",
    ]
    ports = [port for group in sorted(open_groups) for port in PORTS[group]]
    if ports:
        timeout = f"{max(1, int(lease * 1000))}ms"
        elements = ", ".join(f"{port} timeout {timeout}" for port in ports)
        lines.append(f"add element inet {table} leased {{ {elements} }}")
    lines += [
        f"add rule inet {table} input tcp dport @leased meta time < {deadline} accept",
        f"add rule inet {table} input tcp dport {_ports(ALL_PORTS)} reject with tcp reset",
    ]
    return "\n".join(lines) + "\n"


def closed_ruleset(table: str) -> str:
    """Loaded at boot, before the network and before Postfix and Dovecot start."""
    return ruleset(table, (), 0, 0)


def apply_ruleset(script: str) -> None:
    proc = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=10, check=False
    )
    if proc.returncode != 0:
        raise OSError(f"nft failed: {proc.stderr.strip()}")


def link_up(addresses: Iterable[str]) -> bool:
    """Whether an interface holding one of `addresses` is up with carrier.

    A veth or NIC without carrier keeps its routes, so DNS queries just time out: the link
    state is the only way to tell "my own link is down" from "the servers are down"."""
    proc = subprocess.run(
        ["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=False
    )
    if proc.returncode != 0:
        return True  # cannot tell: assume up (keep the current state)
    wanted = set(addresses)
    for link in json.loads(proc.stdout or "[]"):
        held = {a.get("local") for a in link.get("addr_info", [])}
        carrier = "NO-CARRIER" not in link.get("flags", [])
        if held & wanted and carrier and link.get("operstate") in ("UP", "UNKNOWN"):
            return True
    return False


def self_fence(marker: str, rules: str, unit: str, reason: str) -> None:
    """Fence this host the way the controller does (same marker, table and boot unit), so
    `mxctl` sees it fenced and only a switchback's unfence opens it again."""
    path = Path(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"self-fenced by mxctl-guard: {reason}\n")
    os.replace(tmp, path)
    proc = subprocess.run(["nft", "-f", rules], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise OSError(f"loading {rules} failed: {proc.stderr.strip()}")
    subprocess.run(["systemctl", "enable", "--quiet", unit], capture_output=True, timeout=30)
