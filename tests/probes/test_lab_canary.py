"""The canary, host state, certificate checks and the CLI against the deployed lab pair."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.resolver
import pytest
from mxlab.network import nft_argv
from mxlab.standins.certs import make_authority
from mxlab.state import LabState, state_dir
from mxlab.targets import lab_settings
from mxlab.topology import host_spec

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.deploy import spec
from orchestrator.probes.canary import canary_round
from orchestrator.probes.result import ErrorClass, ProbeResult
from orchestrator.probes.settings import ProbeSettings
from tests.probes.lab_helpers import REPO, in_host, probe, resync_replication, wait_serving

pytestmark = pytest.mark.lab
# The doveadm port the deploy opens between the two replicators (no fact typed twice).
GROUP_DEFAULTS = spec.DEFAULTS
DOVEADM_PORT = int(GROUP_DEFAULTS["mail_replication_port"])
BLOCK_TABLE = "mxctl_probe_test"  # our own table, never the lab's mxlab_fault


@pytest.fixture(scope="module")
def settings(lab: LabState) -> Iterator[ProbeSettings]:
    settings = lab_settings(lab)
    for host in ("mx1", "mx2"):
        wait_serving(settings, host)
    yield settings


def _canary(settings: ProbeSettings) -> dict[str, ProbeResult]:
    return {r.probe: r for r in asyncio.run(canary_round(settings, SYSTEM_CLOCK))}


def _copies(host: str, token: str) -> int:
    out = in_host(host, "doveadm", "search", "-u", "probe@example.test", "mailbox", "INBOX",
                  "header", "X-Mxctl-Canary", token)  # fmt: skip
    return len(out.split())


def test_canary_reports_delivery_and_replication_latency_and_cleans_up(
    settings: ProbeSettings,
) -> None:
    results = _canary(settings)
    delivery, replication = results["canary-delivery"], results["canary-replication"]
    assert delivery.ok and replication.ok, (delivery.summary(), replication.summary())
    assert (delivery.target, replication.target) == ("mx1", "mx2")
    assert delivery.details["mx"] == "mx1.example.test"
    assert 0 < delivery.latency < settings.timeouts.canary_delivery
    assert 0 <= replication.latency < settings.timeouts.canary_replication
    assert delivery.details["delivery_latency_ms"] == round(delivery.latency * 1000, 1)
    token = str(delivery.details["token"])
    deadline = time.monotonic() + 5  # the expunge replicates like any change
    while _copies("mx1", token) + _copies("mx2", token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (_copies("mx1", token), _copies("mx2", token)) == (0, 0)


def _block_doveadm(block: bool) -> None:
    peer = host_spec("mx2").address
    if block:
        rules = (
            f"table inet {BLOCK_TABLE} {{\n"
            f"  chain output {{ type filter hook output priority 0; "
            f"ip daddr {peer} tcp dport {DOVEADM_PORT} drop; }}\n"
            f"  chain input {{ type filter hook input priority 0; "
            f"ip saddr {peer} tcp dport {DOVEADM_PORT} drop; }}\n"
            "}\n"
        )
        args = ["-f", "-"]
    else:
        rules, args = "", ["delete", "table", "inet", BLOCK_TABLE]
    proc = subprocess.run(nft_argv(host_spec("mx1"), *args), input=rules,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_blocked_replication_reports_the_standby_lagging_not_the_primary_down(
    settings: ProbeSettings,
) -> None:
    quick = replace(settings, timeouts=replace(settings.timeouts, canary_replication=3.0))
    try:
        _block_doveadm(True)
        results = _canary(quick)
        delivery, replication = results["canary-delivery"], results["canary-replication"]
        assert delivery.ok, delivery.summary()
        assert (replication.ok, replication.error) == (False, ErrorClass.LAGGING)
        assert replication.target == "mx2"
        assert "mx2 had not received the canary 3 s after mx1" in replication.message
        # The standby itself serves: only its copy of the mail is behind.
        standby = probe(settings, "mx2", "smtp", "imaps")
        assert all(r.ok for r in standby.values())
    finally:
        _block_doveadm(False)
        resync_replication()
    deadline = time.monotonic() + 30
    while not (healed := _canary(settings))["canary-replication"].ok:
        assert time.monotonic() < deadline, healed["canary-replication"].summary()
        resync_replication()
        time.sleep(1)
    # The lagging round's canary was expunged on mx1; once healed, mx2 holds no copy either.
    token = str(delivery.details["token"])
    while _copies("mx1", token) + _copies("mx2", token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (_copies("mx1", token), _copies("mx2", token)) == (0, 0)


def test_certificate_name_ca_and_expiry_are_checked_on_the_lab_hosts(
    settings: ProbeSettings, tmp_path: Path
) -> None:
    mx1 = settings.host("mx1")
    wrong_name = replace(settings, hosts=(replace(mx1, fqdn="mx9.example.test"),))
    stranger_ca = replace(settings, ca_file=make_authority().write(tmp_path / "other-ca.pem"))
    too_soon = replace(settings, cert_warn_days=400)  # lab certificates last 397 days
    name = probe(wrong_name, "mx1", "smtp")["smtp"]
    ca = probe(stranger_ca, "mx1", "imaps")["imaps"]
    soon = probe(too_soon, "mx1", "submission")["submission"]
    assert (name.error, name.step) == (ErrorClass.CERTIFICATE, "tls")
    assert "Hostname mismatch" in name.message
    assert (ca.error, ca.step) == (ErrorClass.CERTIFICATE, "tls")
    assert "unable to get local issuer certificate" in ca.message
    assert (soon.error, soon.step) == (ErrorClass.CERTIFICATE, "certificate")
    assert 390 < float(soon.details["cert_days_left"]) < 400  # type: ignore[arg-type]


def test_host_state_reads_queue_volume_replicator_and_daemons(settings: ProbeSettings) -> None:
    for host in ("mx1", "mx2"):
        state = probe(settings, host, "host-state")["host-state"]
        assert state.ok, state.summary()
        details = state.details
        assert (details["postfix"], details["dovecot"]) == ("running", "running")
        assert isinstance(details["queue_size"], int)
        assert 0 < float(details["volume_free_percent"]) <= 100  # type: ignore[arg-type]
        assert details["replication_users"] == 3
        assert details["replication_failed"] == 0


def _mxctl(*args: str) -> tuple[int, dict[str, object]]:
    proc = subprocess.run([str(REPO / ".venv/bin/mxctl"), *args], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    return proc.returncode, json.loads(proc.stdout)


def test_mxctl_probe_json_covers_every_probe_of_both_hosts(settings: ProbeSettings) -> None:
    rc, report = _mxctl("lab", "probe", "--json")
    results = report["results"]
    assert isinstance(results, list)
    seen = {(r["target"], r["probe"]) for r in results}
    for host in ("mx1", "mx2"):
        for name in ("smtp", "submission", "imaps", "imap-starttls", "host-state"):
            assert (host, name) in seen
    assert {("mx1", "canary-delivery"), ("mx2", "canary-replication")} <= seen
    assert rc == (0 if all(r["ok"] for r in results) else 1)
    assert rc == 0, [r for r in results if not r["ok"]]


def test_mxctl_check_finds_the_pair_in_parity(settings: ProbeSettings) -> None:
    rc, report = _mxctl("lab", "check", "--json")
    findings = {(f["check"], f["subject"]): f for f in report["findings"]}  # type: ignore[attr-defined]
    for key in [("users", "mx1+mx2"), ("dkim-key", "mx1+mx2"), ("certificates", "mx1"),
                ("certificates", "mx2"), ("mx", "example.test"), ("dkim-record", "example.test"),
                ("mx", "example.org"), ("dkim-record", "example.org")]:  # fmt: skip
        assert findings[key]["ok"], findings[key]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [settings.parity.nameservers[0]]  # type: ignore[union-attr]
    for domain in ("example.test", "example.org"):
        try:
            texts = [r.to_text() for r in resolver.resolve(domain, "TXT")]
        except dns.resolver.NoAnswer:
            texts = []
        spf = findings[("spf", domain)]
        if not any("v=spf1" in t for t in texts):  # the lab zones publish no SPF (yet)
            assert (spf["ok"], spf["detail"]) == (False, "no single v=spf1 record")
    assert rc == (0 if all(f["ok"] for f in findings.values()) else 1)


def test_mxctl_probe_reads_targets_from_the_lab_mxctl_toml(settings: ProbeSettings) -> None:
    config = state_dir() / "mxctl.toml"  # written by `mxctl lab up` for the controller
    rc, report = _mxctl("probe", "--config", str(config), "--json")
    results = report["results"]
    assert isinstance(results, list)
    seen = {(r["target"], r["probe"]) for r in results}
    expected = {(h, p) for h in ("mx1", "mx2") for p in ("smtp", "submission", "imaps",
                "imap-starttls", "host-state")}  # fmt: skip
    assert seen == expected  # no canary: mxctl.toml has no section for it yet
    assert rc == 0, [r for r in results if not r["ok"]]


def test_canary_from_a_vantage_host_enters_through_the_mx_from_its_address(
    settings: ProbeSettings,
) -> None:
    # mxctl run in the sender's network namespace probes from the sender's address, as a
    # witness host would: the canary reaches the MX as mail from an outside MTA.
    proc = subprocess.run(
        ["ip", "netns", "exec", host_spec("sender").netns, str(REPO / ".venv/bin/mxctl"), "lab",
         "probe", "--json", "--no-ssh"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    canary = {r["probe"]: r for r in report["results"] if r["probe"].startswith("canary")}
    assert canary["canary-delivery"]["ok"] and canary["canary-replication"]["ok"], canary
    token = canary["canary-delivery"]["details"]["token"]
    log = in_host("mx1", "cat", "/var/log/postfix.log").splitlines()
    queue_id = next(line.split(": ")[1] for line in log if f"message-id=<{token}@" in line)
    client = next(line for line in log if f"{queue_id}: client=" in line)
    assert f"[{host_spec('sender').address}]" in client
