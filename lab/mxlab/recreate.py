"""`mxctl lab recreate HOST`: the host is destroyed and a bare new one takes its place.

Disaster recovery drills need hosts that are really gone: the container is killed, its
overlay (every file the deploy and the mail wrote) is wiped, and a fresh machine boots with
the same name and address but a new SSH host key (pinned again in known_hosts), as a
reinstalled server would. Only the cached base image is shared with the old host.
"""

from __future__ import annotations

from pathlib import Path

from mxlab import acmehost, hostfs, lab, network, nspawn
from mxlab.credentials import ssh_keypair
from mxlab.procs import run
from mxlab.state import load_lab_state, state_dir
from mxlab.topology import HostSpec, host_spec
from orchestrator.errors import UsageError


def _replace_known_host(known_hosts: Path, spec: HostSpec, host_key: str) -> None:
    key = " ".join(host_key.split()[:2])
    lines = [
        ln for ln in known_hosts.read_text().splitlines()
        if spec.address not in ln.split(" ", 1)[0].split(",")
    ]  # fmt: skip
    lines.append(f"{spec.address},{spec.name},{spec.fqdn} {key}")
    known_hosts.write_text("\n".join(lines) + "\n")


def _drop_host_firewall(spec: HostSpec) -> None:
    """The host's network namespace outlives its container, and with it every nftables
    table the old host loaded (its fence, its guard, its peer firewall): a reinstalled
    machine boots with none. Seen: a recreated mx1 kept the old one's fence table with no
    fence marker, so nothing unfenced it and it refused SMTP. The whole ruleset is flushed
    by the old host's own nft (this machine's nft 1.0.6 segfaults on any listing once a
    Debian 13 host's tables are loaded; network.nft_argv), then the lab's fault table is
    made again by the machine's nft, with the partitions it held (faults are the lab's)."""
    cut = network.cut_hosts(spec)
    run(network.nft_argv(spec, "flush", "ruleset"),
        what=f"dropping the firewall tables of {spec.name}")  # fmt: skip
    network.install_fault_table(spec)
    if cut:
        elements = ", ".join(cut)
        network.nft(
            spec,
            f"add element inet {network.FAULT_TABLE} cut_hosts {{ {elements} }}\n",
            what=f"restoring the partitions of {spec.name}",
        )


def recreate(name: str, suite: str | None = None) -> str:
    """`suite` (a mail host only): boot the new host on that Debian suite instead, as a
    reinstall on the new release would (the rolling upgrade's stand-in for apt's)."""
    spec = host_spec(name)
    state = load_lab_state()
    if suite is not None:
        if spec.role != "mail":
            raise UsageError(f"--suite applies to mail hosts only, not {spec.name}")
        lab.record_host_suite(spec.name, suite)
    images = lab.running_images()
    nspawn.stop(spec.name, lab.nspawn_pid(spec.name), timeout=3.0)
    _drop_host_firewall(spec)
    host_dir = state_dir() / "hosts" / spec.name
    root = host_dir / "root"
    if hostfs.mounted(root):
        run(["umount", str(root)], what=f"unmounting the root of {spec.name}")
    hostfs.wipe_writable(host_dir)
    root = hostfs.mount_root(host_dir, images.lowers(spec), own_disk=spec.role == "mail")
    client_pub = ssh_keypair(Path(state.ssh_key), "mxctl-lab")
    tsig = Path(state.tsig_secret_file).read_text().strip()
    host_key = hostfs.seed(
        root, spec, suite=images.suite_of(spec), authorized_key=client_pub, tsig_secret=tsig
    )
    ca_cert = Path(state.ca_cert)
    if spec.role == "acme":
        acmehost.seed(root, spec, ca_cert, Path(state.ca_key))
    else:
        acmehost.trust_in(root)
    _replace_known_host(Path(state.known_hosts), spec, host_key)
    lab.boot_host(spec, images)
    lab.wait_for([spec], 22)
    if spec.role == "acme":
        # A new Pebble makes a new root: hosts booted before trust the old one until
        # they are recreated too; the lab's bundle (probes, deploy) has the new one.
        acmehost.keep_root(acmehost.fetch_root(spec, ca_cert), ca_cert)
    on = images.suite_of(spec)
    return f"recreated {spec.name} on {on}: a bare host, every deployed file and message gone"
