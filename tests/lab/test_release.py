"""What the lab offers a host upgrading in place (mxlab.release): pure parts, no lab."""

from __future__ import annotations

from pathlib import Path

import pytest
from mxlab import image, lab
from mxlab.release import chosen_debs, deb_name

from orchestrator.errors import LabError

# `apt-get -s full-upgrade` of a deployed Debian 12 mail host against trixie (lab, 2026-11).
SIMULATED = """NOTE: This is only a simulation!
Inst libc6 [2.36-9+deb12u14] (2.41-12+deb13u5 Debian:13.8/stable [amd64]) [libc-bin:amd64 ]
Inst dovecot-core [1:2.3.19.1+dfsg1-2.1+deb12u7] (1:2.4.1+dfsg1-6+deb13u7 Debian:13.8/stable, Debian-Security:13/stable-security [amd64]) [systemd:amd64 ]
Inst libssl3t64 (3.5.9-1~deb13u1 Debian:13.8/stable [amd64]) [systemd:amd64 ]
Inst python3-dnspython [2.3.0-1+deb12u1] (2.7.0-1+deb13u1 Debian:13.8/stable [all])
Conf libc6 (2.41-12+deb13u5 Debian:13.8/stable [amd64])
Remv cpio [2.15+dfsg-2]
"""  # noqa: E501


def test_the_debs_apt_would_install_are_named_as_apt_downloads_them() -> None:
    assert chosen_debs(SIMULATED) == {
        "libc6_2.41-12+deb13u5_amd64.deb",
        "dovecot-core_1%3a2.4.1+dfsg1-6+deb13u7_amd64.deb",  # the epoch's colon
        "libssl3t64_3.5.9-1~deb13u1_amd64.deb",  # new, no old version
        "python3-dnspython_2.7.0-1+deb13u1_all.deb",
    }


def test_deb_name_escapes_the_epoch() -> None:
    assert deb_name("bind9-host", "1:9.20.30-1~deb13u1", "amd64") == (
        "bind9-host_1%3a9.20.30-1~deb13u1_amd64.deb"
    )


@pytest.mark.parametrize("suite", image.SUITES)
def test_a_host_reads_its_suite_by_name_so_the_upgrade_sed_moves_it(suite: str) -> None:
    line = image.repo_source(suite)
    assert line == f"deb [trusted=yes] file:{image.REPO_PATH_IN_HOST}/{suite} ./\n"
    if suite == "bookworm":  # what apt_upgrade_command's sed does to it
        assert line.replace("bookworm", "trixie") == image.repo_source("trixie")


@pytest.mark.parametrize(
    ("text", "codename"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n', "bookworm"),
        ('VERSION_ID="13"\nVERSION_CODENAME="trixie"\n', "trixie"),
    ],
)
def test_the_release_a_root_runs_is_its_os_release(
    tmp_path: Path, text: str, codename: str
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(text)
    assert lab.root_release(tmp_path) == codename


def test_a_root_without_a_codename_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('NAME="Debian"\n')
    with pytest.raises(LabError, match="VERSION_CODENAME"):
        lab.root_release(tmp_path)
