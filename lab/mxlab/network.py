"""The lab's network: one bridge, one namespace per host, and the faults we inject into it.

Hosts get a veth into the bridge, a deterministic MAC, an address on the lab subnet and no
default route: the lab can reach the machine (the bridge address) and itself, nothing else.
Partitions are nftables drop rules inside the two namespaces, so packets vanish silently
(like a real partition: peers time out) while every other host still reaches both. A host
that dies silently gets a table of its own that drops every packet in and out.
"""

from __future__ import annotations

from pathlib import Path

from mxlab.procs import run
from mxlab.state import state_dir
from mxlab.topology import BRIDGE, GATEWAY, LAB_NAME, SUBNET, VETH_PREFIX, HostSpec
from orchestrator.errors import LabError

NETNS_DIR = Path("/run/netns")
FAULT_TABLE = "mxlab_fault"
# A table of its own, created by `silence` and deleted by `unsilence`: labs built before it
# existed get it too, and the fault table's partitions are left alone.
SILENT_TABLE = "mxlab_silent"


def _ip(*args: str, what: str) -> None:
    run(["ip", *args], what=what, fix="run `mxctl lab down` and retry")


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def lab_namespaces() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(f"{LAB_NAME}-"))


def create_bridge() -> None:
    if link_exists(BRIDGE):
        return
    _ip("link", "add", BRIDGE, "type", "bridge", what=f"creating bridge {BRIDGE}")
    _ip("addr", "add", f"{GATEWAY}/{SUBNET.prefixlen}", "dev", BRIDGE, what="addressing bridge")
    _ip("link", "set", BRIDGE, "up", what=f"bringing {BRIDGE} up")


def create_host_link(spec: HostSpec) -> None:
    ns = spec.netns
    if not (NETNS_DIR / ns).exists():
        _ip("netns", "add", ns, what=f"creating network namespace {ns}")
    if not link_exists(spec.veth):
        _ip(
            "link",
            "add",
            spec.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
            what=f"creating the link of {spec.name}",
        )
    batch = [
        f"link set eth0 address {spec.mac}",
        f"addr replace {spec.address}/{SUBNET.prefixlen} dev eth0",
        "link set eth0 up",
        "link set lo up",
    ]
    run(
        ["ip", "-n", ns, "-batch", "-"],
        input_text="\n".join(batch) + "\n",
        what=f"configuring the network of {spec.name}",
    )
    _ip("link", "set", spec.veth, "master", BRIDGE, "up", what=f"plugging {spec.name} in")
    install_fault_table(spec)


def install_fault_table(spec: HostSpec) -> None:
    rules = f"""
table inet {FAULT_TABLE} {{
    set cut_hosts {{ type ipv4_addr; }}
    chain input {{ type filter hook input priority 0; ip saddr @cut_hosts drop; }}
    chain output {{ type filter hook output priority 0; ip daddr @cut_hosts drop; }}
}}
"""
    nft(spec, rules, what=f"installing the fault table of {spec.name}", replace=True)


def nft_argv(spec: HostSpec, *args: str) -> list[str]:
    """nft in the host's network namespace, as the host's own nft once its root is there.

    A Debian 13 host's firewall holds rules written by nft 1.1; the machine's nft 1.0
    (Debian 12) crashes reading them (SIGSEGV), so the host's own binary does the work. Before
    the root filesystem is mounted the namespace is empty and the machine's nft is fine."""
    own = state_dir() / "hosts" / spec.name / "root"
    if (own / "usr/sbin/nft").exists():
        return ["ip", "netns", "exec", spec.netns, "chroot", str(own), "/usr/sbin/nft", *args]
    return ["ip", "netns", "exec", spec.netns, "nft", *args]


def nft(spec: HostSpec, script: str, *, what: str, replace: bool = False) -> None:
    """`replace` (re)creates the fault table, with the machine's nft: the oldest nft that
    will read it (Debian 12's), so every host's own nft can read it later; the namespace
    holds nothing else then (a new link, or a ruleset just flushed)."""
    prefix = f"table inet {FAULT_TABLE}\ndelete table inet {FAULT_TABLE}\n" if replace else ""
    argv = ["ip", "netns", "exec", spec.netns, "nft", "-f", "-"]
    run(
        argv if replace else nft_argv(spec, "-f", "-"),
        input_text=prefix + script,
        what=what,
        fix="is the nftables package installed? (`make bootstrap` installs it)",
    )


def partition(a: HostSpec, b: HostSpec, heal: bool = False) -> None:
    """Drop all traffic between two hosts (both directions), or restore it."""
    verb = "delete" if heal else "add"
    for here, there in ((a, b), (b, a)):
        if heal and there.address not in cut_hosts(here):
            continue  # healing what is not cut is a no-op, not an error
        nft(
            here,
            f"{verb} element inet {FAULT_TABLE} cut_hosts {{ {there.address} }}\n",
            what=f"{'healing' if heal else 'partitioning'} {here.name} from {there.name}",
        )


def partition_from_machine(spec: HostSpec, heal: bool = False) -> None:
    """Cut a host off from this machine only (where the controller runs); other lab hosts
    still reach it. The rule lives in the host's namespace: the machine is left untouched."""
    verb = "delete" if heal else "add"
    if heal and str(GATEWAY) not in cut_hosts(spec):
        return
    nft(
        spec,
        f"{verb} element inet {FAULT_TABLE} cut_hosts {{ {GATEWAY} }}\n",
        what=f"{'healing' if heal else 'cutting'} {spec.name} from the machine",
    )


def cut_hosts(spec: HostSpec) -> list[str]:
    out = run(
        nft_argv(spec, "list", "set", "inet", FAULT_TABLE, "cut_hosts"),
        what=f"reading the partitions of {spec.name}",
        check=False,
    ).stdout
    if "elements" not in out:
        return []
    inside = out.split("elements = {", 1)[1].split("}", 1)[0]
    return sorted(e.strip() for e in inside.split(",") if e.strip())


def silence(spec: HostSpec) -> None:
    """Drop every packet to and from the host in its own namespace: no RST, no ICMP, as a
    machine that died on the internet. ARP still answers (the inet family does not see
    it), so a peer's connect waits out its own timeout instead of failing on the LAN."""
    rules = f"""
table inet {SILENT_TABLE} {{
    chain input {{ type filter hook input priority -10; policy drop; }}
    chain output {{ type filter hook output priority -10; policy drop; }}
}}
"""
    nft(spec, rules, what=f"silencing {spec.name}")


def unsilence(spec: HostSpec) -> None:
    if (NETNS_DIR / spec.netns).exists():
        # Declaring the table first makes the delete a no-op when it is absent.
        script = f"table inet {SILENT_TABLE}\ndelete table inet {SILENT_TABLE}\n"
        nft(spec, script, what=f"letting packets reach {spec.name} again")


def is_silent(spec: HostSpec) -> bool:
    if not (NETNS_DIR / spec.netns).exists():
        return False
    argv = nft_argv(spec, "list", "table", "inet", SILENT_TABLE)
    return run(argv, what=f"reading whether {spec.name} is silenced", check=False).returncode == 0


def set_link(spec: HostSpec, up: bool) -> None:
    if not link_exists(spec.veth):
        raise LabError(f"lab host {spec.name} has no link {spec.veth}: is the lab up?")
    _ip("link", "set", spec.veth, "up" if up else "down", what=f"setting {spec.name} link")


def link_is_up(spec: HostSpec) -> bool:
    try:
        flags = Path(f"/sys/class/net/{spec.veth}/flags").read_text()
    except FileNotFoundError:
        return False
    return bool(int(flags, 16) & 0x1)


def destroy() -> None:
    """Remove every lab namespace, veth and the bridge (what exists; never fails halfway)."""
    errors = []
    for ns in lab_namespaces():
        proc = run(["ip", "netns", "delete", ns], what=f"deleting netns {ns}", check=False)
        if proc.returncode != 0:
            errors.append(f"netns {ns}: {proc.stderr.strip()}")
    for link in Path("/sys/class/net").iterdir():
        if link.name.startswith(VETH_PREFIX) or link.name == BRIDGE:
            run(["ip", "link", "delete", link.name], what=f"deleting {link.name}", check=False)
    if errors:
        raise LabError("lab network teardown incomplete: " + "; ".join(errors))
