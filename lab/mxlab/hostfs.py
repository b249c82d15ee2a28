"""Each lab host's root filesystem: an overlay on the cached image, seeded before boot.

Only what a freshly installed machine would have is written here (hostname, resolver,
apt source, host key, the operator's authorized key, and for the DNS hosts their BIND
config):
everything a mail host serves comes later from the deploy, over SSH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mxlab import bind, image, unbound
from mxlab.credentials import ssh_keypair, write_secret
from mxlab.procs import run
from mxlab.topology import HOSTS, HostSpec, resolver_addresses


def mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as info:
        return any(line.split()[4] == target for line in info)


DISK_SIZE = 4 << 30  # bytes of a mail host's own disk: room for a release upgrade


def mount_root(host_dir: Path, lowers: list[Path], *, own_disk: bool = False) -> Path:
    """Mount the host's overlay root (idempotent); return the mount point.

    With `own_disk` (mail hosts) the root's writable layer lives on a filesystem of its
    own, a sparse ext4 image, so that the host can fill its disk and see ENOSPC on every
    path as a real machine does (`mxctl lab fault mx1 disk-full`). A host whose writable
    layer is already on the machine's disk (a lab built before) keeps it there."""
    upper, work, root = host_dir / "upper", host_dir / "work", host_dir / "root"
    if own_disk and not upper.exists():
        disk = mount_disk(host_dir)
        upper, work = disk / "upper", disk / "work"
    for d in (upper, work, root):
        d.mkdir(parents=True, exist_ok=True)
    if not mounted(root):
        lower = ":".join(str(p) for p in lowers)
        run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={upper},workdir={work}", str(root)],
            what=f"mounting the root filesystem of {host_dir.name}",
            fix="the kernel needs overlayfs (modprobe overlay)",
        )  # fmt: skip
    return root


def disk_dir(host_dir: Path) -> Path:
    return host_dir / "disk"


def mount_disk(host_dir: Path) -> Path:
    """The host's own disk, made on first use and mounted (idempotent). `discard` gives
    the machine back the blocks of files deleted inside it."""
    image_file, disk = host_dir / "disk.img", disk_dir(host_dir)
    if not image_file.exists():
        host_dir.mkdir(parents=True, exist_ok=True)
        with open(image_file, "wb") as sparse:
            sparse.truncate(DISK_SIZE)
        run(
            ["mkfs.ext4", "-q", "-m", "0", "-L", host_dir.name, str(image_file)],
            what=f"making the disk of {host_dir.name}",
            fix="is e2fsprogs installed?",
        )
    disk.mkdir(exist_ok=True)
    if not mounted(disk):
        run(
            ["mount", "-o", "loop,discard", str(image_file), str(disk)],
            what=f"mounting the disk of {host_dir.name}",
            fix="the kernel needs loop devices",
        )
    return disk


def wipe_writable(host_dir: Path) -> None:
    """Forget everything the host wrote (its root must be unmounted): a bare host again."""
    for part in ("upper", "work"):
        shutil.rmtree(host_dir / part, ignore_errors=True)
    disk = disk_dir(host_dir)
    if mounted(disk):
        run(["umount", str(disk)], what=f"unmounting the disk of {host_dir.name}")
    (host_dir / "disk.img").unlink(missing_ok=True)


def _owner(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise KeyError(user)


def seed(root: Path, spec: HostSpec, *, suite: str, authorized_key: str, tsig_secret: str) -> str:
    """Write the host's first-boot files; return its SSH host public key line."""
    (root / "etc/hostname").write_text(spec.fqdn + "\n")
    hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    hosts += [f"{h.address} {h.fqdn} {h.name}" for h in HOSTS]
    (root / "etc/hosts").write_text("\n".join(hosts) + "\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)  # may be a symlink into /run in the image
    servers = "".join(f"nameserver {a}\n" for a in resolver_addresses(spec))
    resolv.write_text(f"search example.test\n{servers}options timeout:1 attempts:2\n")
    # Written here, not only in the image: images cached before the repository had one
    # directory per suite name none, and a release upgrade's sed needs the suite's name.
    (root / "etc/apt/sources.list").write_text(image.repo_source(suite))
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    write_secret(ssh_dir / "authorized_keys", authorized_key + "\n")
    host_key = ssh_keypair(root / "etc/ssh/ssh_host_ed25519_key", f"root@{spec.fqdn}")
    if spec.role.startswith("dns-"):
        _seed_bind(root, spec, tsig_secret)
    if spec.role == "resolver":
        (root / unbound.CONF_PATH.lstrip("/")).write_text(unbound.unbound_conf())
    return host_key


def _seed_bind(root: Path, spec: HostSpec, tsig_secret: str) -> None:
    uid, gid = _owner(root, "bind")
    conf = root / "etc/bind/named.conf"
    conf.write_text(bind.named_conf(spec, tsig_secret))
    conf.chmod(0o640)
    os.chown(conf, 0, gid)
    zone_dir = root / bind.ZONE_DIR.lstrip("/")
    for name, text in bind.zone_files(spec).items():
        path = zone_dir / name
        path.write_text(text)
        os.chown(path, uid, gid)
