"""Lab acceptance: fail the MX over to mx2 on the real lab BIND pair, prove it, put it back.

ns1 is the lab's primary (RFC 2136 + TSIG key mxctl-lab), ns2 its secondary (NOTIFY +
AXFR). The config is the one `mxctl lab up` writes (render_lab_config): verification
resolves each zone's NS set and queries ns1 and ns2 directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest
from mxlab.mxctl_config import render_lab_config
from mxlab.state import LabState

from .conftest import run_mxctl

pytestmark = pytest.mark.lab


def served_mx(address: str, zone: str) -> tuple[list[str], bool]:
    query = dns.message.make_query(zone, "MX")
    query.flags &= ~dns.flags.RD
    response = dns.query.udp(query, address, timeout=3)
    rdatas = sorted(r.to_text() for rrset in response.answer for r in rrset)
    return rdatas, bool(response.flags & dns.flags.AA)


def switch_and_verify(
    host: str, config: Path, capsys: pytest.CaptureFixture[str], backup: str | None = None
) -> dict[str, object]:
    extra = ["--backup", backup] if backup else []
    code, out, err = run_mxctl(
        ["dns", "apply", "--mx", host, *extra, "--yes", "--json", "--config", str(config)],
        capsys,
    )
    assert code == 0, (out, err)
    code, out, err = run_mxctl(["dns", "verify", "--json", "--config", str(config)], capsys)
    assert code == 0, (out, err)
    report: dict[str, object] = json.loads(out)
    return report


def test_lab_mx_to_mx2_verified_at_ns1_and_ns2_then_back(
    lab: LabState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mxctl.toml"
    config.write_text(render_lab_config(lab))
    ns1, ns2 = lab.host("ns1"), lab.host("ns2")
    mx1, mx2 = lab.host("mx1").fqdn, lab.host("mx2").fqdn
    before, _ = served_mx(ns1.address, "example.test")
    steady = [f"10 {mx1}.", f"20 {mx2}."]  # mx1, with mx2 as backup MX
    assert before == steady, "the lab must start with MX -> mx1 (backup mx2)"
    try:
        report = switch_and_verify(mx2, config, capsys)
        servers = report["servers"]
        assert isinstance(servers, list)
        assert {(s["zone"], s["address"]) for s in servers} == {
            (zone, ns.address) for zone in ("example.test.", "example.org.") for ns in (ns1, ns2)
        }
        for zone in ("example.test.", "example.org."):
            at_zone = [s for s in servers if s["zone"] == zone]
            assert len({s["serial"] for s in at_zone}) == 1, at_zone  # same serial on both
            for server in at_zone:
                mx = [a for a in server["answers"] if a["type"] == "MX"]
                assert mx[0]["rdatas"] == [f"10 {mx2}."], server
        # And independently of mxctl's verifier: ns2 answers authoritatively with mx2.
        for zone in ("example.test", "example.org"):
            assert served_mx(ns2.address, zone) == ([f"10 {mx2}."], True)
    finally:
        back = switch_and_verify(mx1, config, capsys, backup=mx2)
    assert back["ok"] is True
    for ns in (ns1, ns2):
        assert served_mx(ns.address, "example.test") == (steady, True)
