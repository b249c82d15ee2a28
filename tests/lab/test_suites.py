"""The lab on both Debian releases: which mirror, which suite (pure; no lab needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mxlab import image, lab
from mxlab.mirror import find_mirrors

from orchestrator.errors import LabError

DEB822 = """Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
"""
ONE_LINE = """deb [arch=amd64] http://one.invalid/debian trixie main
deb http://sec.invalid/debian-security trixie-security main
"""


@pytest.mark.parametrize(
    ("files", "main", "security"),
    [
        ({"sources.list.d/debian.sources": DEB822}, "http://mirror.invalid/debian",
         "http://security.invalid/debian-security"),
        ({"sources.list": ONE_LINE}, "http://one.invalid/debian",
         "http://sec.invalid/debian-security"),
        ({"sources.list": "deb http://only.invalid/debian/ bookworm main\n"},
         "http://only.invalid/debian", None),
    ],
)  # fmt: skip
def test_the_mirror_is_the_one_apt_uses_whatever_its_suite(
    tmp_path: Path, files: dict[str, str], main: str, security: str | None
) -> None:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    mirrors = find_mirrors(apt_dir=tmp_path)
    assert (mirrors.main, mirrors.security) == (main, security)


def test_no_debian_mirror_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://x.invalid/ubuntu noble main\n")
    with pytest.raises(LabError, match="--mirror"):
        find_mirrors(apt_dir=tmp_path)


@pytest.mark.parametrize(
    ("flag", "env", "want"),
    [(None, None, "bookworm"), ("trixie", None, "trixie"), (None, "trixie", "trixie"),
     ("bookworm", "trixie", "bookworm")],
)  # fmt: skip
def test_suite_from_flag_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch, flag: str | None, env: str | None, want: str
) -> None:
    if env is None:
        monkeypatch.delenv("MXCTL_LAB_SUITE", raising=False)
    else:
        monkeypatch.setenv("MXCTL_LAB_SUITE", env)
    assert lab.requested_suite(flag) == want


def test_unknown_suite_is_refused_naming_the_choices() -> None:
    with pytest.raises(LabError, match="bookworm, trixie"):
        image.check_suite("sid")
