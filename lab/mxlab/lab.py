"""`mxctl lab up|down|status`: build, describe and remove the whole lab.

`up` is all or nothing: if any step fails, whatever it made is torn down before the error
is reported. `down` works from what exists on the machine (namespaces, cgroups, mounts),
not from lab.json, so it also cleans up after a crash or an interrupted `up`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from mxlab import acmehost, credentials, dnslag, hostfs, image, network, nspawn
from mxlab.controller_config import render_controller_config
from mxlab.mirror import find_mirrors
from mxlab.mxctl_config import render_lab_config
from mxlab.procs import alive, run
from mxlab.state import (
    LabHost,
    LabState,
    cache_dir,
    lab_json_path,
    load_lab_state,
    state_dir,
)
from mxlab.topology import (
    BRIDGE,
    CONTROLLER_HOSTS,
    GATEWAY,
    HOSTS,
    LAB_NAME,
    LAYERS,
    SUBNET,
    TSIG_ALGORITHM,
    TSIG_NAME,
    ZONES,
    HostSpec,
)  # fmt: skip
from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.errors import LabError

log = logging.getLogger(__name__)
# One lock per lab: its commands run one at a time. Labs beside it (MXCTL_LAB_NAME) have
# their own; what they share, the image cache, has CACHE_LOCK_PATH, which waits.
LOCK_PATH = Path(f"/run/mxctl-lab.{LAB_NAME}.lock")
CACHE_LOCK_PATH = Path("/run/mxctl-lab-cache.lock")
BOOT_TIMEOUT = 60.0


@contextlib.contextmanager
def lab_lock(wait: bool = False, path: Path = LOCK_PATH) -> Iterator[None]:
    """One command at a time on this lab (another lab on the machine has its own lock)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LabError(
                f"another `mxctl lab` command (pid {holder}) is running: wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def preflight() -> None:
    """Refuse early, in one line, when this machine cannot host a lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts): run as root")
    filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems:
        raise LabError("the kernel has no overlayfs: run `modprobe overlay` and retry")
    if not Path("/proc/self/ns/net").exists():
        raise LabError("the kernel has no network namespaces (CONFIG_NET_NS): the lab needs them")
    nspawn.check_cgroups()
    _raise_inotify_instances()
    for tool in ("ip", "nft", "debootstrap", "apt-ftparchive", "ssh-keygen", "openssl", "nsenter"):
        if shutil.which(tool) is None:
            raise LabError(f"`{tool}` is missing: run `make bootstrap` (installs the lab's tools)")


# Each container's systemd takes several inotify instances; the kernel's default of 128
# per user (all lab hosts run as root) is exhausted by two labs of seven hosts, and a
# host's PID 1 then exits at boot ("Failed to allocate manager object: Too many open files").
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
MIN_INOTIFY_INSTANCES = 4096


def _raise_inotify_instances() -> None:
    if int(INOTIFY_INSTANCES.read_text()) < MIN_INOTIFY_INSTANCES:
        log.info("raising fs.inotify.max_user_instances to %d", MIN_INOTIFY_INSTANCES)
        INOTIFY_INSTANCES.write_text(f"{MIN_INOTIFY_INSTANCES}\n")


def _host_dir(name: str) -> Path:
    return state_dir() / "hosts" / name


def _pid_file(name: str) -> Path:
    return _host_dir(name) / "nspawn.pid"


def nspawn_pid(name: str) -> int | None:
    try:
        pid = int(_pid_file(name).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def tcp_open(address: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def requested_suite(suite: str | None = None) -> str:
    """The Debian suite of the lab's mail hosts: `--suite`, else MXCTL_LAB_SUITE, else
    bookworm. DNS servers and the outside sender stay on bookworm whatever it is."""
    return image.check_suite(suite or os.environ.get("MXCTL_LAB_SUITE") or image.DEFAULT_SUITE)


def running_suite() -> str:
    """The mail hosts' suite of the lab that is up (bookworm for labs that predate it)."""
    return load_lab_state().extra.get("mail_suite", image.DEFAULT_SUITE)


HOST_SUITE_KEY = "suite:"  # lab.json extra: "suite:mx1" = the suite mx1 was recreated on


def host_suites() -> dict[str, str]:
    """Mail hosts recreated on another suite than the lab's (a rolling upgrade's stand-in
    for the OS upgrade leaves a mixed pair): host name -> suite."""
    extra = load_lab_state().extra
    return {
        k.removeprefix(HOST_SUITE_KEY): v for k, v in extra.items() if k.startswith(HOST_SUITE_KEY)
    }


def record_host_suite(name: str, suite: str) -> None:
    """Back on the lab's own suite, the host is recorded as nothing special: the lab's
    state is then what `lab up` made (tests compare it)."""
    state = load_lab_state()
    if image.check_suite(suite) == state.extra.get("mail_suite", image.DEFAULT_SUITE):
        state.extra.pop(HOST_SUITE_KEY + name, None)
    else:
        state.extra[HOST_SUITE_KEY + name] = suite
    lab_json_path().write_text(state.to_json())


def running_images() -> _Images:
    """The images of the lab that is up, each mail host on the suite it runs."""
    return build_images(mail_suite=running_suite(), host_suites=host_suites())


@dataclass
class _Images:
    mail_suite: str
    bases: dict[str, Path]  # suite -> base root filesystem
    layers: dict[str, Path]  # built on the default suite's base
    repos: dict[str, Path]  # suite -> offline apt repository
    nspawn: nspawn.Nspawn
    host_suites: dict[str, str] = field(default_factory=dict)  # mail host -> its own suite

    def suite_of(self, spec: HostSpec) -> str:
        if spec.role != "mail":
            return image.DEFAULT_SUITE
        return self.host_suites.get(spec.name, self.mail_suite)

    def lowers(self, spec: HostSpec) -> list[Path]:
        return ([self.layers[spec.layer]] if spec.layer else []) + [self.bases[self.suite_of(spec)]]


def build_images(
    mirror: str | None = None,
    mail_suite: str = image.DEFAULT_SUITE,
    host_suites: dict[str, str] | None = None,
) -> _Images:
    """Every cached build product the hosts need (built first when missing), per suite."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with lab_lock(wait=True, path=CACHE_LOCK_PATH):  # another lab may be building them
        mirrors = find_mirrors(mirror)
        per_host = dict(host_suites or {})
        wanted = {image.DEFAULT_SUITE, mail_suite, *per_host.values()}
        suites = sorted(image.check_suite(suite) for suite in wanted)
        bases = {suite: image.build_base(cache, mirrors, suite) for suite in suites}
        default = bases[image.DEFAULT_SUITE]
        layers = {n: image.build_layer(cache, default, n, pkgs) for n, pkgs in LAYERS.items()}
        packages = image.repo_packages()
        repos = {suite: image.build_repo(cache, bases[suite], packages) for suite in suites}
        fetched = nspawn.fetch_nspawn(cache)
        return _Images(mail_suite, bases, layers, repos, fetched, per_host)


def release_dir(suite: str) -> Path:
    """Where this lab offers `suite` to hosts upgrading to it in place (`mxctl lab
    release` fills it): every mail host of an older suite has it at /srv/lab-repo/SUITE
    from its boot, as a local mirror would hold the next release beside the current one."""
    return state_dir() / "releases" / suite


def repo_binds(spec: HostSpec, images: _Images) -> dict[str, str]:
    """The offline repository's directories a host sees: its suite's, and for a mail host
    the newer suites it may be upgraded to in place (empty until `mxctl lab release`)."""
    suite = images.suite_of(spec)
    binds = {str(images.repos[suite]): f"{image.REPO_PATH_IN_HOST}/{suite}"}
    if spec.role == "mail":
        for newer in image.SUITES[image.SUITES.index(suite) + 1 :]:
            offered = release_dir(newer)
            offered.mkdir(parents=True, exist_ok=True)
            binds[str(offered)] = f"{image.REPO_PATH_IN_HOST}/{newer}"
    return binds


def root_release(root: Path) -> str:
    """The Debian codename a host's root filesystem holds now: its image's, or after an
    in-place upgrade the one apt took it to."""
    for line in (root / "etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    raise LabError(f"no VERSION_CODENAME in {root}/etc/os-release")


def boot_host(spec: HostSpec, images: _Images) -> None:
    """Start a host's container on its (already seeded) root; does not wait for it."""
    root = hostfs.mount_root(_host_dir(spec.name), images.lowers(spec))
    pid = nspawn.start(
        images.nspawn,
        host=spec.name,
        machine=spec.machine,
        fqdn=spec.fqdn,
        root=root,
        netns=spec.netns,
        binds_ro=repo_binds(spec, images),
        log_path=_host_dir(spec.name) / "console.log",
        # What the root runs, not its image: a host upgraded in place to trixie (systemd
        # 257) boots again only on a pure cgroup v2 tree.
        unified_cgroups=root_release(root) != image.DEFAULT_SUITE,
    )
    _pid_file(spec.name).write_text(str(pid))


def wait_for(specs: list[HostSpec], port: int, clock: Clock = SYSTEM_CLOCK) -> None:
    deadline = clock.monotonic() + BOOT_TIMEOUT
    waiting = list(specs)
    while waiting:
        waiting = [s for s in waiting if not tcp_open(s.address, port)]
        dead = [s.name for s in waiting if nspawn_pid(s.name) is None]
        if dead:
            raise LabError(
                f"lab host(s) {', '.join(dead)} stopped while booting: see "
                f"{_host_dir(dead[0]) / 'console.log'}"
            )
        if waiting and clock.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise LabError(
                f"lab host(s) {names} did not open port {port} within {BOOT_TIMEOUT:.0f} s: "
                f"see {_host_dir(waiting[0].name) / 'console.log'}"
            )
        if waiting:
            clock.sleep(0.05)


def wait_serving(spec: HostSpec, clock: Clock = SYSTEM_CLOCK) -> None:
    """Wait until a nameserver answers authoritatively for every lab zone (the resolver:
    answers them through its stub zones)."""
    deadline = clock.monotonic() + BOOT_TIMEOUT
    pending = list(ZONES)
    recursive = spec.role == "resolver"
    while pending:
        pending = [zone for zone in pending if not _serves(spec.address, zone, recursive)]
        if pending and clock.monotonic() > deadline:
            raise LabError(
                f"{spec.name} does not serve {', '.join(pending)} after {BOOT_TIMEOUT:.0f} s: "
                f"see `mxctl lab exec {spec.name} -- journalctl -u "
                f"{'unbound' if recursive else 'named'}`"
            )
        if pending:
            clock.sleep(0.05)


def _serves(address: str, zone: str, recursive: bool = False) -> bool:
    query = dns.message.make_query(zone, "SOA")
    if not recursive:
        query.flags = dns.flags.Flag(0)  # no recursion: we ask the authority itself
    try:
        reply = dns.query.udp(query, address, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    if recursive:
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.flags & dns.flags.AA)


def is_up() -> bool:
    return lab_json_path().exists() and all(nspawn_pid(h.name) for h in HOSTS)


def up(mirror: str | None = None, suite: str | None = None) -> LabState:
    mail_suite = requested_suite(suite)
    preflight()
    with lab_lock():
        if is_up():
            state = load_lab_state()
            have = state.extra.get("mail_suite", image.DEFAULT_SUITE)
            if have != mail_suite:
                raise LabError(
                    f"the lab is up with {have} mail hosts, not {mail_suite}: "
                    "run `mxctl lab down` first (or use another MXCTL_LAB_NAME)"
                )
            log.info("the lab is already up: nothing to do")
            write_client_config(state)  # as this version of mxctl writes it
            return state
        if lab_json_path().exists() or network.lab_namespaces():
            raise LabError("a previous lab is half up: run `mxctl lab down` first")
        try:
            return _build(mirror, mail_suite)
        except BaseException:
            log.error("lab up failed: tearing down what was built")
            _teardown()
            raise


def _build(mirror: str | None, mail_suite: str) -> LabState:
    images = build_images(mirror, mail_suite)
    sdir = state_dir()
    sdir.mkdir(parents=True, exist_ok=True)
    sdir.chmod(0o700)
    client_pub = credentials.ssh_keypair(sdir / "id_ed25519", "mxctl-lab")
    tsig_file = sdir / "tsig.key"
    tsig = credentials.tsig_secret(tsig_file)
    ca_cert, ca_key = credentials.certificate_authority(sdir)
    network.create_bridge()
    known_hosts = []
    for spec in HOSTS:
        network.create_host_link(spec)
        root = hostfs.mount_root(_host_dir(spec.name), images.lowers(spec))
        host_key = hostfs.seed(
            root, spec, suite=images.suite_of(spec), authorized_key=client_pub, tsig_secret=tsig
        )
        if spec.role == "acme":
            acmehost.seed(root, spec, ca_cert, ca_key)
        key_type_and_body = " ".join(host_key.split()[:2])
        known_hosts.append(f"{spec.address},{spec.name},{spec.fqdn} {key_type_and_body}")
    (sdir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    # DNS first: every other host resolves through it, and lookups timing out would slow
    # mail daemons' start by tens of seconds.
    # The primary before the secondary: a secondary that finds its primary closed backs off
    # its first zone transfer for tens of seconds.
    dns_hosts = sorted((s for s in HOSTS if s.role.startswith("dns-")), key=lambda s: s.role)
    for spec in sorted(dns_hosts, key=lambda s: s.role != "dns-primary"):
        boot_host(spec, images)
        wait_for([spec], 53)
        wait_serving(spec)
    # The cache next: the outside hosts resolve through it.
    for spec in (s for s in HOSTS if s.role == "resolver"):
        boot_host(spec, images)
        wait_for([spec], 53)
        wait_serving(spec)
    # The ACME server next: its root, once published, is trusted by every host after it.
    extra = {"mail_suite": mail_suite}
    for spec in (s for s in HOSTS if s.role == "acme"):
        boot_host(spec, images)
        acmehost.keep_root(acmehost.fetch_root(spec, ca_cert), ca_cert)
        extra |= {
            "acme_directory": acmehost.directory_url(spec),
            "acme_root": str(acmehost.root_path()),
            "trust": str(acmehost.trust_path()),
        }
    booted = {"resolver", "acme"}
    others = [s for s in HOSTS if s not in dns_hosts and s.role not in booted]
    for spec in others:
        acmehost.trust_in(hostfs.mount_root(_host_dir(spec.name), images.lowers(spec)))
        boot_host(spec, images)
    wait_for(list(HOSTS), 22)
    state = LabState(
        name=LAB_NAME,
        subnet=str(SUBNET),
        bridge=BRIDGE,
        gateway=str(GATEWAY),
        zones=list(ZONES),
        hosts={s.name: LabHost(s.name, s.fqdn, s.address, s.role, s.netns, s.mac) for s in HOSTS},
        ssh_user="root",
        ssh_key=str(sdir / "id_ed25519"),
        known_hosts=str(sdir / "known_hosts"),
        tsig_name=TSIG_NAME,
        tsig_algorithm=TSIG_ALGORITHM,
        tsig_secret_file=str(tsig_file),
        ca_cert=str(ca_cert),
        ca_key=str(ca_key),
        extra=extra,
    )
    write_client_config(state)
    lab_json_path().write_text(state.to_json())
    return state


def write_client_config(state: LabState) -> None:
    """The lab's mxctl.toml: DNS provider and records, the pair, probes, witness, API."""
    text = render_lab_config(state) + render_controller_config(state)
    (state_dir() / "mxctl.toml").write_text(text)


def down() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts): run as root")
    with lab_lock():
        _teardown()


def _lab_mounts() -> list[str]:
    prefix = str(state_dir()) + "/"
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4] for line in info]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _teardown() -> None:
    """Remove every process, mount, cgroup, namespace and link of the lab; keep the cache."""
    every = HOSTS + CONTROLLER_HOSTS  # controller hosts too, if they were added
    names = [h.name for h in every]
    dnslag.end_process()
    for name in names:
        pid = nspawn_pid(name)
        if pid is not None:
            nspawn.thaw(name)
            os.kill(pid, 15)
    for name in names:
        nspawn.stop(name, nspawn_pid(name))
    for point in _lab_mounts():
        run(["umount", "--lazy", point], what=f"unmounting {point}", check=False)
    for name in names:
        nspawn.remove_cgroups(name)
        machine = next(h.machine for h in every if h.name == name)
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / machine, ignore_errors=True)
    for hierarchy in nspawn.HIERARCHIES:
        with contextlib.suppress(OSError):
            (nspawn.CGROUP_ROOT / hierarchy / LAB_NAME).rmdir()
    network.destroy()
    if _lab_mounts():
        raise LabError(f"lab mounts remain after teardown: {_lab_mounts()}")
    shutil.rmtree(state_dir(), ignore_errors=True)
