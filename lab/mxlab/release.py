"""`mxctl lab release SUITE`: offer the lab's mail hosts a Debian release to upgrade to in
place, as an operator's local mirror would, for `mxctl upgrade`'s own OS step (apt sources
bookworm -> trixie, `apt-get full-upgrade` over SSH; issue 13's rolling upgrade).

Lab hosts have no route out: their apt reads only the offline repository, one flat
directory per suite under /srv/lab-repo. This machine reaches Debian's mirror (the one its
own apt uses, mxlab.mirror), so it works out what each host's apt will want there: from a
copy of the host's dpkg status, with the suite's sources and an apt state of its own,
`full-upgrade` and `install` of the deploy's packages (repo-packages.txt: the new
release's deploy installs them), simulated, then downloaded. The .debs land in a cache
every lab shares (/var/cache/mxctl-lab/release-SUITE/archives: a second run fetches only
what changed on the mirror) and exactly those apt chose are published, hard-linked and
indexed, in this lab's directory for the suite, which every mail host of an older suite
has had at /srv/lab-repo/SUITE since its boot (lab.repo_binds).

It also takes the image's policy-rc.d away from those hosts. It is there so that a first
deploy starts the daemons itself; a machine upgraded in place is a real one, whose
maintainer scripts restart what they upgrade. Seen without the restart: Debian 12's sshd
stayed the listener, and every new connection died ("Connection reset by peer") since it
runs the new release's sshd for each one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mxlab import hostfs, image, lab
from mxlab.mirror import find_mirrors
from mxlab.procs import run
from mxlab.state import cache_dir, state_dir
from mxlab.topology import HOSTS, LAB_NAME, host_spec
from orchestrator.errors import LabError, UsageError

POLICY_RC_D = "usr/sbin/policy-rc.d"
# `apt-get -s` says what it would install: "Inst NAME [OLD] (NEW ORIGINS [ARCH])".
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)")


@dataclass(frozen=True)
class Offered:
    suite: str
    hosts: tuple[str, ...]  # the mail hosts it was computed for
    packages: int  # .debs published
    size_mb: float  # their size
    fetched_mb: float  # downloaded from the mirror this time (the rest was in the cache)
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.suite} offered to {', '.join(self.hosts) or 'no host'} at "
            f"{image.REPO_PATH_IN_HOST}/{self.suite}: {self.packages} packages, "
            f"{self.size_mb:.0f} MB ({self.fetched_mb:.0f} MB fetched from the mirror, "
            f"the rest from the cache) in {self.seconds:.0f} s"
        )


def deb_name(name: str, version: str, arch: str) -> str:
    """The file name apt gives a package it downloads (an epoch's colon is %3a)."""
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def chosen_debs(simulation: str) -> set[str]:
    """The .deb file names an `apt-get -s` run would install or upgrade."""
    debs = set()
    for line in simulation.splitlines():
        match = _INST.match(line)
        if match:
            debs.add(deb_name(*match.groups()))
    return debs


def _o(setting: str) -> list[str]:
    return ["-o", setting]


class _Apt:
    """This machine's apt pointed at one host's package state and the suite's mirror."""

    def __init__(self, work: Path, archives: Path, sources: str) -> None:
        self.work = work
        for sub in ("lists/partial", "cache", "empty", "hosts"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        (work / "sources.list").write_text(sources)
        self.base = [
            *_o(f"Dir::State::Lists={work / 'lists'}"),
            *_o(f"Dir::Cache={work / 'cache'}"),
            *_o(f"Dir::Cache::archives={archives}/"),
            *_o(f"Dir::Etc::SourceList={work / 'sources.list'}"),
            *_o(f"Dir::Etc::SourceParts={work / 'empty'}"),
            *_o(f"Dir::Etc::Preferences={work / 'empty' / 'none'}"),
            *_o(f"Dir::Etc::PreferencesParts={work / 'empty'}"),
            *_o("Acquire::Languages=none"),
        ]

    def for_host(self, root: Path, name: str) -> list[str]:
        """Options reading a copy of the host's dpkg status and apt marks (never its own)."""
        snap = self.work / "hosts" / name
        snap.mkdir(exist_ok=True)
        shutil.copy(root / "var/lib/dpkg/status", snap / "status")
        marks = root / "var/lib/apt/extended_states"
        (snap / "extended_states").write_text(marks.read_text() if marks.exists() else "")
        return [
            *self.base,
            *_o(f"Dir::State::status={snap / 'status'}"),
            *_o(f"Dir::State::extended_states={snap / 'extended_states'}"),
        ]

    def run(self, options: list[str], args: str, what: str) -> str:
        argv = ["apt-get", "-q", "-y", *options, *args.split()]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        return run(argv, what=what, env=env, timeout=1800).stdout


def _hosts_to_upgrade(names: list[str], suite: str) -> list[tuple[str, Path]]:
    out = []
    for name in names or [h.name for h in HOSTS if h.role == "mail"]:
        spec = host_spec(name)
        if spec.role != "mail":
            raise UsageError(f"`mxctl lab release` offers a release to mail hosts, not {name}")
        root = state_dir() / "hosts" / name / "root"
        if not hostfs.mounted(root):
            raise LabError(f"lab host {name} has no mounted root: run `mxctl lab up` first")
        now = lab.root_release(root)
        if image.SUITES.index(now) < image.SUITES.index(suite):
            out.append((name, root))
    return out


def offer_release(suite: str, names: list[str] | None = None, mirror: str | None = None) -> Offered:
    """Compute, download and publish `suite` for the named mail hosts (default: both)."""
    image.check_suite(suite)
    began = time.monotonic()
    hosts = _hosts_to_upgrade(list(names or []), suite)
    sources = image.mirror_list(find_mirrors(mirror), suite)
    archives = cache_dir() / f"release-{suite}" / "archives"
    work = cache_dir() / f"release-{suite}" / f"work-{LAB_NAME}"
    shutil.rmtree(work, ignore_errors=True)
    wanted: set[str] = set()
    with lab.lab_lock(wait=True, path=lab.CACHE_LOCK_PATH):  # the archives are shared
        apt = _Apt(work, archives, sources)
        before = {p.name: p.stat().st_size for p in archives.glob("*.deb")}
        apt.run(apt.base, "update", f"reading {suite}'s package lists from the mirror")
        packages = " ".join(image.repo_packages())
        for name, root in hosts:
            opts = apt.for_host(root, name)
            for args in ("full-upgrade", f"install {packages}"):
                said = apt.run(opts, f"-s {args}", f"working out {args.split()[0]} of {name}")
                wanted |= chosen_debs(said)
                apt.run(opts, f"--download-only {args}", f"downloading {suite} for {name}")
        apt.run(apt.base, "autoclean", "dropping .debs the mirror no longer has")
        fetched = sum(p.stat().st_size for p in archives.glob("*.deb") if p.name not in before)
        size = _publish(archives, wanted, lab.release_dir(suite))
    shutil.rmtree(work, ignore_errors=True)
    for _name, root in hosts:
        (root / POLICY_RC_D).unlink(missing_ok=True)
    return Offered(
        suite,
        tuple(name for name, _ in hosts),
        len(wanted),
        size / 1e6,
        fetched / 1e6,
        time.monotonic() - began,
    )


def _publish(archives: Path, wanted: set[str], dest: Path) -> int:
    """Hard-link (else copy) the wanted .debs into `dest` and index it; return their size."""
    missing = sorted(name for name in wanted if not (archives / name).exists())
    if missing:
        raise LabError(f"apt chose {len(missing)} packages it did not download: {missing[:5]}")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    size = 0
    for name in sorted(wanted):
        try:
            os.link(archives / name, dest / name)
        except OSError:  # another filesystem
            shutil.copy2(archives / name, dest / name)
        size += (dest / name).stat().st_size
    folder = shlex.quote(str(dest))
    for kind, file in (("packages", "Packages"), ("release", "Release")):
        out = run(["sh", "-c", f"cd {folder} && apt-ftparchive {kind} ."],
                  what=f"indexing the lab's {dest.name} directory")  # fmt: skip
        (dest / file).write_text(out.stdout)
    return size
