"""The controller's certificate renewal timer: installed only with `[certs]`, and units
that systemd itself accepts (`systemd-analyze verify`, the host's systemd 252)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
from mxctl_deploys.controller import CONFIG, wants_cert_renewal

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
UNITS = ("mxctl-cert-renew.service", "mxctl-cert-renew.timer")


def test_timer_only_when_the_config_has_certs(tmp_path: Path) -> None:
    without = tmp_path / "a.toml"
    without.write_text('[dns]\nprovider = "rfc2136"\n')
    with_certs = tmp_path / "b.toml"
    with_certs.write_text('[certs]\ndirectory_url = "https://acme.example/directory"\n')
    assert not wants_cert_renewal(str(without))
    assert wants_cert_renewal(str(with_certs))


def test_units_render_and_systemd_accepts_them(tmp_path: Path) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False)
    venv = Path(sys.executable).parent.parent  # an mxctl that exists: verify checks ExecStart
    for unit in UNITS:
        text = env.get_template(f"controller/{unit}.j2").render(venv=str(venv), config=CONFIG)
        (tmp_path / unit).write_text(text)
    service = (tmp_path / UNITS[0]).read_text()
    assert f"ExecStart={venv}/bin/mxctl cert renew --config {CONFIG}" in service
    assert "Type=oneshot" in service
    verify = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=2", "*-*-* 00/12:00:00"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert calendar.returncode == 0, calendar.stderr
    assert "00:00:00" in calendar.stdout and "12:00:00" in calendar.stdout  # twice a day
