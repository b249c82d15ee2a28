"""Working with a running lab: status, commands inside hosts, and fault injection."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mxlab import dnslag, hostfaults, lab, network, nspawn, unbound
from mxlab.topology import CONTROLLER_HOSTS, HOSTS, HostSpec, host_spec
from orchestrator.errors import LabError, UsageError

# Faults inside a host: the function that makes or ends it, and what it did.
IN_HOST: dict[str, tuple[Callable[[str], None], str]] = {
    "cannot-act": (hostfaults.cannot_act, "lets SSH in, but every command fails"),
    "can-act": (hostfaults.can_act, "runs commands again"),
}
FAULTS_ONE_HOST = (
    "down", "kill", "up", "link-down", "link-up", "freeze", "thaw", "unlag", *IN_HOST,
)  # fmt: skip
FAULTS_WITH_VALUE = ("lag",)  # HOST WORD VALUE, e.g. ns2 lag 8
FAULTS_TWO_HOSTS = ("partition", "heal")
MACHINE = "machine"  # partition HOST machine: cut a host off from this machine only


@dataclass(frozen=True)
class HostStatus:
    name: str
    fqdn: str
    address: str
    role: str
    running: bool
    silent: bool  # `down`: every packet to and from it dropped
    frozen: bool
    link_up: bool
    ssh_open: bool
    cut_from: list[str]
    lag: float | None  # s a secondary nameserver serves changes late
    acts: bool  # False: SSH lets you in, every command fails


def status() -> list[HostStatus]:
    rows = []
    added = [s for s in CONTROLLER_HOSTS if (network.NETNS_DIR / s.netns).exists()]
    for spec in HOSTS + tuple(added):
        running = lab.nspawn_pid(spec.name) is not None
        frozen = nspawn.is_frozen(spec.name)
        has_netns = (network.NETNS_DIR / spec.netns).exists()
        rows.append(
            HostStatus(
                name=spec.name,
                fqdn=spec.fqdn,
                address=spec.address,
                role=spec.role,
                running=running,
                silent=network.is_silent(spec),
                frozen=frozen,
                link_up=network.link_is_up(spec),
                ssh_open=running and not frozen and lab.tcp_open(spec.address, 22, 0.3),
                cut_from=network.cut_hosts(spec) if has_netns else [],
                lag=dnslag.lag_seconds() if spec.role == "dns-secondary" else None,
                acts=hostfaults.acts(spec.name),
            )
        )
    return rows


def status_dicts() -> list[dict[str, object]]:
    return [asdict(row) for row in status()]


def container_init_pid(name: str) -> int:
    """The PID (in the machine's namespace) of the host's systemd: nspawn's child."""
    pid = lab.nspawn_pid(name)
    if pid is None:
        raise LabError(f"lab host {name} is not running: `mxctl lab fault {name} up` starts it")
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    raise LabError(f"lab host {name} has no init process yet: retry in a second")


def exec_in(
    name: str, command: Sequence[str], *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a lab host's namespaces (works even when its network is cut)."""
    return subprocess.run(exec_argv(name, command), capture_output=capture, text=True, check=False)


def exec_argv(name: str, command: Sequence[str]) -> list[str]:
    """The argv that runs `command` inside a lab host, as its own processes run there."""
    if not command:
        raise UsageError("give the command to run after `--`, e.g. mxctl lab exec mx1 -- hostname")
    host_spec(name)
    init = container_init_pid(name)
    return [
        "nsenter", f"--target={init}", "--mount", "--uts", "--ipc", "--net", "--pid", "--",
        "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
        *command,
    ]  # fmt: skip


def flush_resolver_cache() -> None:
    """Make the caching resolver forget the lab zones: the outside world starts from the
    records as they are now, as it would after their TTL (tests set up a steady state
    with this; they never use it to hide a failover from the caches)."""
    proc = exec_in("resolver", unbound.flush_command(), capture=True)
    if proc.returncode != 0:
        raise LabError(f"flushing the resolver's cache failed: {proc.stderr.strip()}")


def fault(host: str, action: str, peer: str | None = None, value: str | None = None) -> str:
    """Inject or remove a fault; returns a sentence saying what was done."""
    spec = host_spec(host)
    if action in FAULTS_WITH_VALUE:
        if value is None:
            raise UsageError(f"`{action}` needs a value: mxctl lab fault {host} {action} VALUE")
        return _valued_fault(spec, action, value)
    if action in FAULTS_TWO_HOSTS:
        if peer is None:
            raise UsageError(f"`{action}` needs two hosts: mxctl lab fault {action} A B")
        if peer == MACHINE:
            network.partition_from_machine(spec, heal=action == "heal")
            verb = "healed the cut between" if action == "heal" else "cut"
            return f"{verb} {spec.name} and the machine (the controller's vantage point)"
        other = host_spec(peer)
        if other == spec:
            raise UsageError(f"`{action}` needs two different hosts")
        network.partition(spec, other, heal=action == "heal")
        verb = "healed the partition between" if action == "heal" else "partitioned"
        return f"{verb} {spec.name} and {other.name}"
    if peer is not None:
        raise UsageError(f"`{action}` takes one host, got a second one ({peer})")
    if action == "down":
        # Silenced first: the kernel's FIN and RST for the killed processes' connections
        # are dropped too, as nothing leaves a machine that lost its power.
        network.silence(spec)
        nspawn.kill(spec.name)
        return f"{spec.name} died silently (every process killed, every packet dropped)"
    if action == "kill":
        nspawn.kill(spec.name)
        return f"crashed {spec.name} (every process killed, no shutdown; its kernel answers RST)"
    if action == "up":
        network.unsilence(spec)
        if lab.nspawn_pid(spec.name) is not None:
            return f"{spec.name} is already running"
        lab.boot_host(spec, lab.running_images())
        lab.wait_for([spec], 22)
        return f"restarted {spec.name}"
    if action in ("link-down", "link-up"):
        network.set_link(spec, up=action == "link-up")
        return f"{spec.name} link is {'up' if action == 'link-up' else 'down'}"
    if action == "freeze":
        nspawn.freeze(spec.name)
        return f"froze every process of {spec.name}"
    if action == "thaw":
        nspawn.thaw(spec.name)
        return f"thawed {spec.name}"
    if action == "unlag":
        return _valued_fault(spec, "lag", "0")
    if action in IN_HOST:
        make, did = IN_HOST[action]
        make(spec.name)
        return f"{spec.name} {did}"
    choices = ", ".join(FAULTS_ONE_HOST + FAULTS_WITH_VALUE + FAULTS_TWO_HOSTS)
    raise UsageError(f"unknown fault {action!r}: choose one of {choices}")


def _valued_fault(spec: HostSpec, action: str, value: str) -> str:
    if action == "lag":
        if spec.role != "dns-secondary":
            raise UsageError(f"`lag` is for the secondary nameserver (ns2), not {spec.name}")
        seconds = dnslag.parse_seconds(value)
        if seconds == 0:
            dnslag.stop()
            return f"{spec.name} transfers every change at once again"
        dnslag.start(seconds)
        return f"{spec.name} serves every change {seconds:g} s after ns1"
    raise UsageError(f"unknown fault {action!r}")
