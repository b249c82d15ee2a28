"""`mxctl lab controllers up|down`: the three controller hosts, added to a running lab.

ctl1..ctl3 are ordinary lab hosts (their own root, link, SSH host key pinned in the lab's
known_hosts, `mxctl lab fault` works on them) that the default lab does not boot: only the
controller-cluster tests need them, and the other lab tests should not pay for three more
containers. `up` is all or nothing; `down` removes them and leaves the rest of the lab as
`lab up` made it (lab.json, known_hosts).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mxlab import acmehost, credentials, hostfs, network, nspawn
from mxlab.lab import (
    _host_dir,
    _pid_file,
    boot_host,
    lab_lock,
    nspawn_pid,
    preflight,
    running_images,
    wait_for,
)
from mxlab.procs import run
from mxlab.state import LabHost, LabState, lab_json_path, load_lab_state, state_dir
from mxlab.topology import CONTROLLER_HOSTS, HOSTS, HostSpec

NAMES = tuple(spec.name for spec in CONTROLLER_HOSTS)


def running() -> bool:
    return all(nspawn_pid(name) is not None for name in NAMES)


def up() -> LabState:
    preflight()
    with lab_lock():
        state = load_lab_state()
        if running() and all(name in state.hosts for name in NAMES):
            return state
        try:
            return _add(state)
        except BaseException:
            _remove(load_lab_state())
            raise


def down() -> LabState:
    with lab_lock():
        return _remove(load_lab_state())


def _known_hosts_without(path: Path, names: tuple[str, ...]) -> list[str]:
    lines = path.read_text().splitlines()
    return [line for line in lines if line.split(",")[1] not in names] if lines else []


def _add(state: LabState) -> LabState:
    images = running_images()
    sdir = state_dir()
    client_pub = credentials.ssh_keypair(Path(state.ssh_key), "mxctl-lab")
    tsig = credentials.tsig_secret(Path(state.tsig_secret_file))
    known = _known_hosts_without(Path(state.known_hosts), NAMES)
    for spec in CONTROLLER_HOSTS:
        network.create_host_link(spec)
        root = hostfs.mount_root(_host_dir(spec.name), images.lowers(spec))
        host_key = hostfs.seed(
            root, spec, suite=images.suite_of(spec), authorized_key=client_pub, tsig_secret=tsig
        )
        acmehost.trust_in(root)
        key_type_and_body = " ".join(host_key.split()[:2])
        known.append(f"{spec.address},{spec.name},{spec.fqdn} {key_type_and_body}")
    Path(state.known_hosts).write_text("\n".join(known) + "\n")
    for spec in CONTROLLER_HOSTS:
        boot_host(spec, images)
    wait_for(list(CONTROLLER_HOSTS), 22)
    for spec in CONTROLLER_HOSTS:
        state.hosts[spec.name] = _lab_host(spec)
    (sdir / "lab.json").write_text(state.to_json())
    return state


def _lab_host(spec: HostSpec) -> LabHost:
    return LabHost(spec.name, spec.fqdn, spec.address, spec.role, spec.netns, spec.mac)


def heal_controller_cuts() -> None:
    """Heal every partition between a controller host and any lab host, from both sides:
    a cut left in another host's fault table would outlive a controller host recreated
    with the same address."""
    ours = {spec.address for spec in CONTROLLER_HOSTS}
    for spec in HOSTS + CONTROLLER_HOSTS:
        if not (network.NETNS_DIR / spec.netns).exists():
            continue
        for address in network.cut_hosts(spec):
            if spec in CONTROLLER_HOSTS or address in ours:
                network.nft(
                    spec,
                    f"delete element inet {network.FAULT_TABLE} cut_hosts {{ {address} }}\n",
                    what=f"healing the cut between {spec.name} and {address}",
                )


def _remove(state: LabState) -> LabState:
    """Crash, unmount and unplug every controller host (what exists; idempotent)."""
    heal_controller_cuts()
    for spec in CONTROLLER_HOSTS:
        nspawn.stop(spec.name, nspawn_pid(spec.name), timeout=3.0)
        _pid_file(spec.name).unlink(missing_ok=True)
        root = _host_dir(spec.name) / "root"
        if hostfs.mounted(root):
            run(["umount", "--lazy", str(root)], what=f"unmounting {root}", check=False)
        nspawn.remove_cgroups(spec.name)
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / spec.machine, ignore_errors=True)
        if (network.NETNS_DIR / spec.netns).exists():
            run(["ip", "netns", "delete", spec.netns], what=f"deleting {spec.netns}", check=False)
        if network.link_exists(spec.veth):
            run(["ip", "link", "delete", spec.veth], what=f"deleting {spec.veth}", check=False)
        shutil.rmtree(_host_dir(spec.name), ignore_errors=True)
        state.hosts.pop(spec.name, None)
    known_hosts = Path(state.known_hosts)
    if known_hosts.exists():
        kept = _known_hosts_without(known_hosts, NAMES)
        known_hosts.write_text("\n".join(kept) + "\n")
    if lab_json_path().exists():
        lab_json_path().write_text(state.to_json())
    return state
