"""The lab's caching resolver: unbound, as the outside world's senders and clients see DNS.

`sender` (a remote MTA) and `client` (a mail user's machine) resolve through it, so they
keep an answer for its TTL exactly as a real site's resolver does: a failover is seen by
them only once the old answer expires. It recurses only into the lab zones (stub zones
pointing at ns1 and ns2); anything else is refused at once, since nothing leaves the lab.
"""

from __future__ import annotations

from mxlab.topology import SUBNET, ZONES, nameserver_addresses

CONF_PATH = "/etc/unbound/unbound.conf"
CONTROL = "/run/unbound.ctl"


def flush_command() -> list[str]:
    """What `resolver` runs to forget every cached answer of the lab zones."""
    flushes = " && ".join(f"unbound-control -s {CONTROL} flush_zone {z}." for z in ZONES)
    return ["sh", "-c", f"{flushes} && unbound-control -s {CONTROL} flush_negative"]


def unbound_conf() -> str:
    lines = [
        "# Written by the mxctl lab; replaces Debian's default (no root trust anchor here).",
        "server:",
        "    interface: 0.0.0.0",
        "    do-ip6: no",
        f"    access-control: {SUBNET} allow",
        "    access-control: 127.0.0.0/8 allow",
        '    username: "unbound"',
        '    chroot: ""',
        '    logfile: ""',
        "    use-syslog: no",
        "    verbosity: 1",
        # No DNSSEC: the lab zones are unsigned and no root anchor can be fetched.
        '    module-config: "iterator"',
        # TTLs are honoured as published: that is the point of this host.
        "    cache-min-ttl: 0",
        "    serve-expired: no",
        "    prefetch: no",
        # The lab has no route out: refuse everything but the lab zones instead of
        # letting lookups time out against unreachable root servers.
        '    local-zone: "." refuse',
    ]
    lines += [f'    local-zone: "{zone}." transparent' for zone in ZONES]
    # Tests flush the cache to start from a world that has long known the current records.
    lines += ["remote-control:", "    control-enable: yes", f"    control-interface: {CONTROL}"]
    for zone in ZONES:
        lines += ["stub-zone:", f'    name: "{zone}."']
        lines += [f"    stub-addr: {address}" for address in nameserver_addresses()]
    return "\n".join(lines) + "\n"
