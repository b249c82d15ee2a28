"""The lab's root filesystems: a Debian base image, layers on top, and an offline apt repo.

Each product is built once into the cache directory under a key derived from its recipe,
so a later `lab up` reuses it; a recipe change (packages, mirror) builds a new one. Builds
happen in a temporary directory renamed into place only when complete, and every chroot
runs in its own mount and PID namespace, so a failed or interrupted build leaves no mounts
or processes behind.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
from pathlib import Path

from mxlab.mirror import Mirrors
from mxlab.procs import run
from orchestrator.errors import LabError

log = logging.getLogger(__name__)

# The Debian releases a lab host can run: bookworm (12, Dovecot 2.3) is the default;
# trixie (13, Dovecot 2.4) on request (`mxctl lab up --suite trixie`, MXCTL_LAB_SUITE).
DEFAULT_SUITE = "bookworm"
SUITES = ("bookworm", "trixie")
# Bump when the base recipe below changes in a way the package list does not show.
BASE_RECIPE_VERSION = "3"
BASE_PACKAGES = (
    "openssh-server",
    "python3",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
    "systemd",
    "systemd-sysv",
    "dbus",
    "bind9-dnsutils",
    "netcat-openbsd",
    "less",
    "nftables",  # the lab's fault rules are written by each host's own nft (network.nft_argv)
)
# The offline repository as a host sees it: one flat directory per suite, as a local mirror
# would offer them, so a release upgrade's sed (bookworm -> trixie) finds the next one.
REPO_PATH_IN_HOST = "/srv/lab-repo"
# apt inside lab hosts reads only the offline repository; builds read the mirror list.
MIRROR_LIST = "/etc/apt/mirror.list"
APT_MIRROR = f"-o Dir::Etc::SourceList={MIRROR_LIST} -o Dir::Etc::SourceParts=/nonexistent"
PACKAGES_FILE = Path(__file__).with_name("repo-packages.txt")

_BASE_FINISH = f"""
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get {APT_MIRROR} update -qq
apt-get {APT_MIRROR} -y -qq -o Dpkg::Options::=--force-confold upgrade
apt-get clean
rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    systemd-networkd-wait-online.service getty@tty1.service console-getty.service \
    >/dev/null 2>&1 || true
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def repo_packages(path: Path = PACKAGES_FILE) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return sorted({line for line in lines if line})


def chroot_script(root: Path, script: str, *, what: str, overlay: str = "") -> None:
    """Run `script` with /bin/sh in a chroot of `root`, in private mount+PID namespaces.

    `overlay`, when given, is mount options for an overlay to mount at `root` first. The
    namespaces end with the script, taking every mount and stray daemon with them.
    """
    mounts = f"mount -t overlay overlay -o {shlex.quote(overlay)} {root} && " if overlay else ""
    inner = (
        f"set -e; {mounts}"
        f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
        f"exec chroot {root} /bin/sh -c {shlex.quote(script)}"
    )
    run(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", inner],
        what=what,
        fix="see `mxctl -v lab up` for detail",
        timeout=900,
    )


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise LabError(
            f"unknown Debian suite {suite!r} for the lab: use one of {', '.join(SUITES)} "
            "(--suite or MXCTL_LAB_SUITE)"
        )
    return suite


def mirror_list(mirrors: Mirrors, suite: str) -> str:
    lines = [f"deb {mirrors.main} {suite} main", f"deb {mirrors.main} {suite}-updates main"]
    if mirrors.security:
        lines.append(f"deb {mirrors.security} {suite}-security main")
    return "\n".join(lines) + "\n"


def repo_source(suite: str) -> str:
    """A lab host's /etc/apt/sources.list: its suite's directory of the offline repository."""
    return f"deb [trusted=yes] file:{REPO_PATH_IN_HOST}/{suite} ./\n"


def _finish(tmp: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    (dest / ".complete").touch()
    return dest


def build_base(cache: Path, mirrors: Mirrors, suite: str = DEFAULT_SUITE) -> Path:
    """The Debian base root filesystem of `suite` (cached); returns its path."""
    sources = mirror_list(mirrors, check_suite(suite))
    key = _digest(BASE_RECIPE_VERSION, " ".join(BASE_PACKAGES), sources)
    # bookworm keeps its historical cache name (base-KEY), so existing caches stay valid.
    dest = cache / (f"base-{key}" if suite == DEFAULT_SUITE else f"base-{suite}-{key}")
    if (dest / ".complete").exists():
        return dest / "rootfs"
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rootfs = tmp / "rootfs"
    rootfs.mkdir(parents=True)
    log.info("building the lab %s base image from %s (about a minute, once)", suite, mirrors.main)
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            suite,
            str(rootfs),
            mirrors.main,
        ],
        what="debootstrap of the lab base image",
        fix="check the Debian mirror in /etc/apt (or pass --mirror URL) and free disk space",
        timeout=900,
    )
    (rootfs / MIRROR_LIST.lstrip("/")).write_text(sources)
    (rootfs / "etc/apt/sources.list").write_text(repo_source(suite))
    policy = rootfs / "usr/sbin/policy-rc.d"
    # Package installs never start daemons in the image; the deploy starts what it wants.
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    sshd_conf = rootfs / "etc/ssh/sshd_config.d/lab.conf"
    sshd_conf.write_text(
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
    )
    chroot_script(rootfs, _BASE_FINISH, what="upgrading the lab base image")
    return _finish(tmp, dest) / "rootfs"


def build_layer(cache: Path, base: Path, name: str, packages: tuple[str, ...]) -> Path:
    """An overlay upper directory holding `packages` installed on top of `base`."""
    key = _digest(str(base), name, " ".join(packages))
    dest = cache / f"layer-{name}-{key}"
    if (dest / ".complete").exists():
        return dest / "upper"
    tmp = cache / f"layer-{name}-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("upper", "work", "merged"):
        (tmp / sub).mkdir(parents=True)
    log.info("building lab image layer %r: %s", name, " ".join(packages))
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        f"apt-get {APT_MIRROR} update -qq && "
        f"apt-get {APT_MIRROR} install -y -qq {' '.join(packages)} >/dev/null && "
        "apt-get clean && rm -rf /var/lib/apt/lists/*"
    )
    chroot_script(
        tmp / "merged",
        script,
        what=f"installing {' '.join(packages)} into the lab layer {name!r}",
        overlay=f"lowerdir={base},upperdir={tmp / 'upper'},workdir={tmp / 'work'}",
    )
    shutil.rmtree(tmp / "work", ignore_errors=True)
    (tmp / "merged").rmdir()
    return _finish(tmp, dest) / "upper"


def build_repo(cache: Path, base: Path, packages: list[str]) -> Path:
    """An offline apt repository with `packages` and every dependency the base lacks."""
    key = _digest(str(base), " ".join(packages))
    dest = cache / f"repo-{key}"
    if (dest / ".complete").exists():
        return dest / "repo"
    tmp = cache / f"repo-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("upper", "work", "merged", "repo"):
        (tmp / sub).mkdir(parents=True)
    log.info("building the lab's offline apt repository (%d packages)", len(packages))
    # Recommends are downloaded too: the deploy's apt.packages installs them by default.
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        f"apt-get {APT_MIRROR} update -qq && "
        f"apt-get {APT_MIRROR} install -y -qq --download-only {' '.join(packages)} >/dev/null"
    )
    chroot_script(
        tmp / "merged",
        script,
        what="downloading the packages of the lab's offline apt repository",
        overlay=f"lowerdir={base},upperdir={tmp / 'upper'},workdir={tmp / 'work'}",
    )
    debs = sorted((tmp / "upper/var/cache/apt/archives").glob("*.deb"))
    if not debs:
        raise LabError("the lab repository came out empty: check lab/mxlab/repo-packages.txt")
    repo = tmp / "repo"
    for deb in debs:
        shutil.move(str(deb), repo / deb.name)
    index = run(
        ["sh", "-c", f"cd {shlex.quote(str(repo))} && apt-ftparchive packages ."],
        what="indexing the lab repository",
    )
    (repo / "Packages").write_text(index.stdout)
    release = run(
        ["sh", "-c", f"cd {shlex.quote(str(repo))} && apt-ftparchive release ."],
        what="writing the lab repository's Release file",
    )
    (repo / "Release").write_text(release.stdout)
    for sub in ("upper", "work", "merged"):
        shutil.rmtree(tmp / sub, ignore_errors=True)
    return _finish(tmp, dest) / "repo"
