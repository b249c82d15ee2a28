"""Each lab fault is detected with the right error class within one probe timeout.

Faults go to mx2 (the standby) and are undone in `finally`, leaving the host serving:
another engineer's tests share these hosts. The lab's probe timeout is 1 s (LAB_TIMEOUTS).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from mxlab import control
from mxlab import lab as lab_ops
from mxlab.state import LabState
from mxlab.targets import lab_settings
from mxlab.topology import host_spec

from orchestrator.deploy.release import SUPPORTED
from orchestrator.probes.result import ErrorClass
from orchestrator.probes.services import SERVICE_PROBES
from orchestrator.probes.settings import ProbeSettings
from tests.probes.lab_helpers import (
    SLACK,
    in_host,
    probe,
    probe_from,
    resync_replication,
    wait_serving,
)

pytestmark = pytest.mark.lab
HOST = "mx2"
# The unit that runs Postfix's main instance on the lab's release (postfix@- on Debian 12).
POSTFIX_UNIT = SUPPORTED[lab_ops.requested_suite()].postfix_unit


@pytest.fixture(scope="module")
def settings(lab: LabState) -> Iterator[ProbeSettings]:
    settings = lab_settings(lab)
    wait_serving(settings, HOST)
    yield settings


def _within_timeout(settings: ProbeSettings, *results: object) -> None:
    for r in results:
        assert r.latency <= settings.timeouts.smtp + SLACK, r  # type: ignore[attr-defined]


def test_healthy_host_passes_every_probe(settings: ProbeSettings) -> None:
    results = probe(settings, HOST, *SERVICE_PROBES, "host-state")
    assert all(r.ok for r in results.values()), [r.summary() for r in results.values()]
    assert results["smtp"].details["banner"].startswith("mx2.example.test ESMTP")  # type: ignore[union-attr]
    assert results["smtp"].details["cert_name"] == "mx2.example.test"
    assert results["imaps"].details["cert_name"] == "mail.example.test"
    assert results["host-state"].details["postfix"] == "running"


def test_host_down_is_refused_at_connect(settings: ProbeSettings) -> None:
    # The host's network namespace outlives its processes, so its kernel answers RST:
    # "refused" from every port, found in milliseconds (LAB.md: ~40 ms).
    try:
        control.fault(HOST, "kill")
        results = probe(settings, HOST, *SERVICE_PROBES, "host-state")
        for r in results.values():
            assert (r.error, r.step) == (
                ErrorClass.REFUSED,
                "connect" if r.probe != "host-state" else "ssh-connect",
            ), r
        _within_timeout(settings, *results.values())
    finally:
        control.fault(HOST, "up")
        wait_serving(settings, HOST)
        resync_replication()


def test_link_cut_is_a_timeout_at_connect(settings: ProbeSettings) -> None:
    try:
        control.fault(HOST, "link-down")
        results = probe(settings, HOST, *SERVICE_PROBES)
        for r in results.values():
            assert (r.error, r.step) == (ErrorClass.TIMEOUT, "connect"), r
            assert settings.timeouts.smtp <= r.latency <= settings.timeouts.smtp + SLACK
    finally:
        control.fault(HOST, "link-up")
        wait_serving(settings, HOST)
        resync_replication()


def test_postfix_killed_is_refused_on_25_and_587_and_unhealthy_over_ssh(
    settings: ProbeSettings,
) -> None:
    try:
        in_host(HOST, "systemctl", "kill", "-s", "KILL", POSTFIX_UNIT)
        time.sleep(0.2)  # the kernel closes the listening sockets of the killed master
        results = probe(settings, HOST, *SERVICE_PROBES, "host-state")
        for name in ("smtp", "submission"):
            assert (results[name].error, results[name].step) == (ErrorClass.REFUSED, "connect")
        assert results["imaps"].ok and results["imap-starttls"].ok
        state = results["host-state"]
        assert (state.error, state.details["postfix"]) == (ErrorClass.UNHEALTHY, "absent")
        assert "postfix is not running" in state.message
        _within_timeout(settings, results["smtp"], results["submission"])
    finally:
        in_host(HOST, "systemctl", "restart", "postfix")
        wait_serving(settings, HOST)
        resync_replication()


def test_dovecot_killed_is_refused_on_993_and_143(settings: ProbeSettings) -> None:
    try:
        in_host(HOST, "systemctl", "kill", "-s", "KILL", "dovecot")
        time.sleep(0.2)
        results = probe(settings, HOST, *SERVICE_PROBES, "host-state")
        for name in ("imaps", "imap-starttls"):
            assert (results[name].error, results[name].step) == (ErrorClass.REFUSED, "connect")
        assert results["smtp"].ok  # port 25 still answers; mail queues until Dovecot is back
        # Submission authenticates through Dovecot: without it Postfix offers no AUTH.
        assert results["submission"].error is ErrorClass.UNEXPECTED_REPLY
        assert results["host-state"].details["dovecot"] == "absent"
        _within_timeout(settings, results["imaps"], results["imap-starttls"])
    finally:
        in_host(HOST, "systemctl", "start", "dovecot")
        wait_serving(settings, HOST)
        resync_replication()


def test_daemons_stopped_with_sigstop_time_out_at_banner_and_greeting(
    settings: ProbeSettings,
) -> None:
    units = (POSTFIX_UNIT, "dovecot")
    try:
        in_host(HOST, "systemctl", "kill", "-s", "SIGSTOP", *units)
        results = probe(settings, HOST, *SERVICE_PROBES, "host-state")
        # The kernel still completes the TCP handshake; then nothing answers.
        assert (results["smtp"].error, results["smtp"].step) == (ErrorClass.TIMEOUT, "banner")
        assert (results["submission"].error, results["submission"].step) == (
            ErrorClass.TIMEOUT,
            "banner",
        )
        assert (results["imaps"].error, results["imaps"].step) == (ErrorClass.TIMEOUT, "tls")
        assert (results["imap-starttls"].error, results["imap-starttls"].step) == (
            ErrorClass.TIMEOUT,
            "greeting",
        )
        _within_timeout(settings, *(results[n] for n in SERVICE_PROBES))
        state = results["host-state"]  # sshd still runs: SSH says which daemons hang
        assert state.error is ErrorClass.UNHEALTHY, state
        assert (state.details["postfix"], state.details["dovecot"]) == ("stopped", "stopped")
    finally:
        in_host(HOST, "systemctl", "kill", "-s", "SIGCONT", *units)
        wait_serving(settings, HOST)
        resync_replication()


def test_whole_host_frozen_times_out_everywhere(settings: ProbeSettings) -> None:
    try:
        control.fault(HOST, "freeze")
        results = probe(settings, HOST, "smtp", "imaps", "host-state")
        assert (results["smtp"].error, results["smtp"].step) == (ErrorClass.TIMEOUT, "banner")
        assert (results["imaps"].error, results["imaps"].step) == (ErrorClass.TIMEOUT, "tls")
        assert results["host-state"].error is ErrorClass.TIMEOUT
        assert results["host-state"].step == "ssh-connect"
    finally:
        control.fault(HOST, "thaw")
        wait_serving(settings, HOST)
        resync_replication()


def test_wrong_password_is_an_auth_error(settings: ProbeSettings) -> None:
    # Dovecot answers a failed login after auth_failure_delay (2 s) and penalises further
    # attempts from the same address; so these come from the sender's address, with a
    # 5 s timeout, each wrong attempt preceded by a good login that clears the penalty.
    for name in ("imaps", "imap-starttls", "submission"):
        good, bad = probe_from(
            host_spec("sender").netns, HOST, name, wrong_password=False, timeout=20
        ) + probe_from(host_spec("sender").netns, HOST, name, wrong_password=True, timeout=5)
        assert good.ok, good
        assert bad.error is ErrorClass.AUTH, bad
        assert bad.step == ("auth" if name == "submission" else "login")
        assert bad.latency < 5
    last = probe_from(host_spec("sender").netns, HOST, "imaps", wrong_password=False, timeout=20)
    assert last[0].ok  # and the sender's address is left without a penalty


def test_ssh_host_keys_are_verified_against_the_pinned_file(
    settings: ProbeSettings, tmp_path: Path
) -> None:
    lines = Path(settings.host("mx1").ssh.known_hosts).read_text().splitlines()  # type: ignore[union-attr]
    address = settings.host("mx1").address
    mx2_key = next(line for line in lines if line.startswith(settings.host("mx2").address + ","))
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"{address} {' '.join(mx2_key.split()[1:])}\n")  # mx2's key for mx1
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for known_hosts, expected in ((wrong, "differs from the pinned one"), (empty, "not pinned")):
        target = settings.host("mx1")
        assert target.ssh is not None
        pinned = replace(target, ssh=replace(target.ssh, known_hosts=str(known_hosts)))
        result = probe(replace(settings, hosts=(pinned,)), "mx1", "host-state")["host-state"]
        assert (result.error, result.step) == (ErrorClass.HOST_KEY, "ssh-connect"), result
        assert expected in result.message
