"""Packet loss between two lab hosts: `mxctl lab fault loss A B 5%`, `heal-loss A B`.

Each of the two hosts drops that share of the packets it receives from the other, at
random (nftables `numgen random`), in a table of its own in its namespace: both directions
lose P %, every other pair is untouched. On input, not output: a packet dropped on output
fails the sender's own call (EPERM), where a lost packet is silent.

Delay is not offered: it needs the kernel's netem queueing discipline, which this
machine's kernel does not have (`tc qdisc ... netem` answers "Specified qdisc kind is
unknown", and there are no modules to load).

The losses in force are kept in the lab's state directory, and each host's table is
written again from them at every change (a table per host, not a rule per pair to find).
"""

from __future__ import annotations

import json

from mxlab import network
from mxlab.state import state_dir
from mxlab.topology import HostSpec, host_spec
from orchestrator.errors import UsageError

LOSS_TABLE = "mxlab_loss"


def losses() -> dict[str, dict[str, int]]:
    """host name -> {peer name: percent of the packets from it dropped}."""
    path = state_dir() / "loss.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def parse_percent(word: str) -> int:
    try:
        percent = int(word.removesuffix("%"))
    except ValueError:
        raise UsageError(
            f"loss takes a percentage, got {word!r}: e.g. mxctl lab fault loss mx1 mx2 5%"
        ) from None
    if not 0 <= percent <= 100:
        raise UsageError(f"loss must be between 0% and 100%, got {word!r}")
    return percent


def set_loss(a: HostSpec, b: HostSpec, percent: int) -> None:
    """Drop `percent` % of the packets between a and b, both ways (0: none)."""
    if a == b:
        raise UsageError("loss needs two different hosts")
    table = losses()
    for here, there in ((a, b), (b, a)):
        peers = table.setdefault(here.name, {})
        if percent:
            peers[there.name] = percent
        else:
            peers.pop(there.name, None)
        if not peers:
            del table[here.name]
    (state_dir() / "loss.json").write_text(json.dumps(table, indent=1, sort_keys=True))
    for spec in (a, b):
        _write_table(spec, table.get(spec.name, {}))


def _write_table(spec: HostSpec, peers: dict[str, int]) -> None:
    if not (network.NETNS_DIR / spec.netns).exists():
        return  # the host's namespace is gone (the lab is down): nothing to drop in
    rules = "".join(
        f"ip saddr {host_spec(peer).address} numgen random mod 100 < {percent} drop; "
        for peer, percent in sorted(peers.items())
    )
    script = f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n"
    if rules:
        script += (
            f"table inet {LOSS_TABLE} {{\n"
            f"    chain input {{ type filter hook input priority -5; {rules}}}\n"
            "}\n"
        )
    network.nft(spec, script, what=f"setting the packet loss of {spec.name}")


def heal_all() -> None:
    """No loss anywhere (the test harness's reset)."""
    for name, peers in losses().items():
        for peer in list(peers):
            set_loss(host_spec(name), host_spec(peer), 0)
