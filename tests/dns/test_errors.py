"""Errors translated at the boundary (one line naming the key, credential or record), and
a lost answer to an RFC 2136 update that does not get the change applied twice."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mxlab.standins.dnsservers import TSIG_SECRET

from orchestrator.config import parse_config
from orchestrator.dns import wire
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, RRset
from orchestrator.errors import DnsAuthError, DnsError, DnsUnavailable

from .conftest import ENVIRON, ProviderEnv, run_mxctl
from .faultproxy import LosingProxy

MX1_SET = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))


def test_wrong_tsig_secret_names_the_key_and_where_the_secret_came_from(
    bind_setup: ProviderEnv,
) -> None:
    text = bind_setup.config_text.replace("env:MXCTL_TEST_TSIG", "env:MXCTL_TEST_BAD_TSIG")
    provider = make_provider(parse_config(text, environ=ENVIRON).dns, bind_setup.clock)
    bind_setup.providers.append(provider)
    with pytest.raises(DnsAuthError) as caught:
        provider.apply_change(
            Change(MX1_SET, RRset("example.test.", "MX", 300, ("10 mx2.example.test.",)))
        )
    message = str(caught.value)
    assert "TSIG key mxctl-test." in message
    assert "env:MXCTL_TEST_BAD_TSIG" in message
    assert ENVIRON["MXCTL_TEST_BAD_TSIG"] not in message and TSIG_SECRET not in message


def test_secret_that_is_not_base64_is_refused_before_sending(bind_setup: ProviderEnv) -> None:
    environ = {**ENVIRON, "MXCTL_TEST_TSIG": "not base64 !!"}
    config = parse_config(bind_setup.config_text, environ=environ).dns
    with pytest.raises(DnsAuthError, match=r"mxctl-test\. \(env:MXCTL_TEST_TSIG\).*base64"):
        make_provider(config, bind_setup.clock)


def test_bind_refusal_is_explained(bind_setup: ProviderEnv) -> None:
    # BIND refuses an MX whose in-zone target has no address record (the plan would too).
    provider = bind_setup.provider()
    to_nowhere = RRset("example.test.", "MX", 300, ("10 mx9.example.test.",))
    with pytest.raises(DnsError, match=r"REFUSED the update of example\.test\. MX") as caught:
        provider.apply_change(Change(MX1_SET, to_nowhere))
    assert "no A/AAAA" in str(caught.value)
    assert provider.read("example.test.", "MX") == MX1_SET


def test_unreachable_server_is_unavailable_after_retries(bind_setup: ProviderEnv) -> None:
    port = bind_setup.nameservers[0].split(":")[1]
    text = bind_setup.config_text.replace(f"port = {port}", "port = 9")
    text = text.replace("timeout = 3", "timeout = 0.2")
    provider = make_provider(parse_config(text, environ=ENVIRON).dns, bind_setup.clock)
    bind_setup.providers.append(provider)
    with pytest.raises(DnsUnavailable, match=r"127\.0\.0\.1 port 9 "):
        provider.read("example.test.", "MX", deadline=bind_setup.clock.monotonic() + 5)
    assert bind_setup.clock.slept  # it retried, on the fake clock


def test_powerdns_unknown_server_id(pdns_setup: ProviderEnv) -> None:
    text = pdns_setup.config_text.replace("timeout = 3", 'timeout = 3\nserver_id = "nope"')
    provider = make_provider(parse_config(text, environ=ENVIRON).dns, pdns_setup.clock)
    pdns_setup.providers.append(provider)
    with pytest.raises(DnsError, match=r"check dns\.powerdns\.server_id"):
        provider.read("example.test.", "MX")


def test_cli_prints_one_line_for_a_bad_token(
    cf_setup: ProviderEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "mxctl.toml"
    path.write_text(cf_setup.config_text)
    monkeypatch.setenv("MXCTL_TEST_CF", "a-revoked-token")
    code, out, err = run_mxctl(["dns", "show", "--config", str(path)], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        "Cloudflare rejected the API token from dns.cloudflare.api_token (env:MXCTL_TEST_CF)" in err
    )
    assert "a-revoked-token" not in err


def test_apply_logs_one_sentence_per_change_and_no_secret(
    bind_setup: ProviderEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = bind_setup.config
    provider = bind_setup.provider()
    apply_plan(build_plan(config, provider, "mx2.example.test"), config, provider)
    lines = [r.getMessage() for r in caplog.records if r.name == "orchestrator.dns.plan"]
    assert len(lines) == 4
    assert any(line.startswith("applied: update example.test. 300 MX 10 mx1") for line in lines)
    assert all(TSIG_SECRET not in r.getMessage() for r in caplog.records)


def test_rfc2136_lost_reply_is_applied_exactly_once(bind_setup: ProviderEnv) -> None:
    server = bind_setup.nameservers[0].split(":")
    proxy = LosingProxy(server[0], int(server[1])).start()
    try:
        text = bind_setup.config_text.replace(f"port = {server[1]}", f"port = {proxy.port}")
        provider = make_provider(parse_config(text, environ=ENVIRON).dns, bind_setup.clock)
        bind_setup.providers.append(provider)
        serial_before = soa_serial(server[0], int(server[1]))
        proxy.lose_tcp_replies = 1
        mx2 = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
        result = provider.apply_change(Change(MX1_SET, mx2))
        # The first UPDATE was committed but its answer lost; the retried UPDATE failed its
        # prerequisite (NXRRSET), the re-read found the desired set: one change, one serial.
        assert result.outcome is Outcome.ALREADY
        assert proxy.forwarded_tcp == 2
        assert soa_serial(server[0], int(server[1])) == serial_before + 1
        assert provider.read("example.test.", "MX") == mx2
    finally:
        proxy.stop()


def soa_serial(address: str, port: int) -> int:
    serial = wire.soa_serial(wire.query(address, port, "example.test.", "SOA", 2))
    assert serial is not None
    return serial
