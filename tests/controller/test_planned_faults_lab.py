"""Planned moves under the world's faults, with the controller running: a move never makes
an outage, and the controller keeps watching while the move waits.

- The target of a switchover dies (silently, or hangs) during the old TTL's wait: the move
  stops before DNS moves, the TTLs come back, mx1 keeps serving and is never fenced.
- The primary dies during a switchover's wait: the failover goes at once, it does not wait
  for the rest of the TTL wait.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dns.message
import dns.query
import pytest
from mxlab import control
from mxlab.controlled import MXCTL, ControlledLab, dump, mx_at, write_config
from mxlab.state import LabState

from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.journal import Event
from orchestrator.dns.factory import make_provider
from orchestrator.errors import LabError

pytestmark = pytest.mark.lab

OLD_TTL, LOW_TTL = 60, 5  # long: a move that waits it out, instead of stopping, shows
MAINTENANCE = f"""
[maintenance]
low_ttl = {LOW_TTL}
drain_timeout = 30
converge_timeout = 90
"""
MX1, MX2 = "mx1.example.test", "mx2.example.test"
LAG_S = 8  # ns2 serves each change this late: a provider whose edge takes seconds


@pytest.fixture
def watched(deployed_pair: LabState, tmp_path: Path) -> Iterator[ControlledLab]:
    """mx1 primary, owned records at OLD_TTL, a witness and the controller running."""
    path = write_config(deployed_pair, tmp_path, ttl=OLD_TTL, client_ttl=OLD_TTL)
    path.write_text(path.read_text() + MAINTENANCE)
    lab = ControlledLab(deployed_pair, tmp_path, path)
    lab.restore()
    try:
        lab.start_witness()
        lab.start_controller()
        lab.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
        yield lab
    finally:
        lab.restore()


def _ttls(lab: ControlledLab) -> dict[str, int]:
    provider = make_provider(lab.config.dns)
    try:
        served = [provider.read(r.name, r.rtype) for r in lab.config.dns.records]
        return {f"{r.name} {r.rtype}": r.ttl for r in served if r.exists}
    finally:
        provider.close()


def _start_switchover(lab: ControlledLab) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MXCTL, "switchover", "--to", "mx2", "--config", str(lab.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _step(events: list[Event], subject: str, status: str) -> Event | None:
    return next((e for e in events if e.subject == subject and e.status == status), None)


def _wait_for_step(lab: ControlledLab, subject: str, status: str, timeout: float) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _step(lab.journal_events(), subject, status)
        if found is not None:
            return found
        time.sleep(0.2)
    raise LabError(f"{subject} never {status}:\n{dump(lab.journal_events())}")


def _client_name_at(address: str) -> list[str]:
    reply = dns.query.udp(dns.message.make_query("mail.example.test", "A"), address, timeout=1)
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


@pytest.mark.parametrize("fault", ["down", "freeze"])
def test_a_switchover_whose_target_dies_in_the_ttl_wait_stops_before_dns_moves(
    watched: ControlledLab, fault: str
) -> None:
    lab = watched
    usual = _ttls(lab)
    assert set(usual.values()) == {OLD_TTL}
    command = _start_switchover(lab)
    lowered = _wait_for_step(lab, "lower-ttl", "done", 120)
    control.fault("mx2", fault)
    out, _ = command.communicate(timeout=OLD_TTL + 120)
    events = lab.journal_events()
    run = [e for e in events if e.run_id == lowered.run_id]
    assert command.returncode == 1, out
    assert "aborted" in out and "mx2.example.test failed for" in out, out
    # The wait stopped on the controller's word, before DNS moved; nothing was committed.
    stopped = _step(run, "wait-old-ttl", "failed")
    assert stopped is not None and "stopped:" in stopped.reason, dump(run)
    assert _step(run, "rewrite-dns", "started") is None, dump(run)
    assert _step(run, "fence-old-primary", "started") is None, dump(run)
    assert _step(run, "undo-restore-ttl", "done") is not None, dump(run)
    # The controller kept watching during the wait: it saw the standby die and said so.
    during = [e for e in events if e.kind == "decision" and e.at > lowered.at]
    assert any(e.subject == "standby-dead" and e.at < stopped.at for e in during), dump(events)
    # mx1 serves as before: the MX, the client name, never fenced, the usual TTLs.
    for ns in lab.nameservers():
        assert mx_at(ns)[0] == f"10 {MX1}.", mx_at(ns)
        assert _client_name_at(ns) == [lab.lab.host("mx1").address]
    assert not fencing.is_fenced(ssh_target(lab.config, MX1))
    assert _ttls(lab) == {k: v for k, v in usual.items() if k in _ttls(lab)}
    status = lab.status()
    assert status["primary"] == MX1 and status["fenced"] == [], status


def test_a_primary_that_dies_in_a_switchovers_wait_is_failed_over_at_once(
    watched: ControlledLab,
) -> None:
    lab = watched
    command = _start_switchover(lab)
    lowered = _wait_for_step(lab, "lower-ttl", "done", 120)
    control.fault("mx1", "down")
    out, _ = command.communicate(timeout=OLD_TTL + 120)
    lab.wait_status(lambda s: s["primary"] == MX2, 60, "the failover to finish")
    events = lab.journal_events()
    run = [e for e in events if e.run_id == lowered.run_id]
    stopped = _step(run, "wait-old-ttl", "failed")
    assert stopped is not None and "failover takes precedence" in stopped.reason, dump(run)
    assert "aborted" in out, out
    # The failover ran as its own run, and moved DNS before the move's wait would have
    # ended: the wait did not hold it back.
    moved = next(
        (e for e in events
         if e.subject == "rewrite-dns" and e.status == "done" and e.run_id != lowered.run_id),
        None,
    )  # fmt: skip
    assert moved is not None and moved.run_id.startswith("failover-"), dump(events)
    wait_ends = datetime.fromisoformat(lowered.evidence["lowered_at"]).timestamp() + OLD_TTL
    assert datetime.fromisoformat(moved.at).timestamp() < wait_ends, dump(events)
    for ns in lab.nameservers():
        assert mx_at(ns) == [f"10 {MX2}."], mx_at(ns)
        assert _client_name_at(ns) == [lab.lab.host("mx2").address]


def test_a_switchback_while_one_nameserver_lags_leaves_both_hosts_serving(
    watched: ControlledLab,
) -> None:
    lab = watched
    control.fault("mx1", "kill")
    lab.wait_status(lambda s: s["primary"] == MX2, 60, "the failover to mx2")
    control.fault("mx1", "up")
    lab.wait_status(lambda s: s["standby"] == MX1, 30, "mx1 back as the standby")
    ack = subprocess.run([MXCTL, "ack", "--config", str(lab.config_path)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ack.returncode == 0, ack.stdout + ack.stderr
    control.fault("ns2", "lag", value=str(LAG_S))
    try:
        back = subprocess.run(
            [MXCTL, "switchback", "--config", str(lab.config_path)],
            capture_output=True, text=True, timeout=OLD_TTL + 240,
        )  # fmt: skip
    finally:
        control.fault("ns2", "unlag")
    events = lab.journal_events()
    assert back.returncode == 0, back.stdout + back.stderr + dump(events)
    # The rewrite reached ns2 seconds after ns1: verification waited for it.
    verified = next(
        e for e in events if e.subject == "verify-dns" and e.status == "done" and e.run_id
        and e.run_id.startswith("switchback")
    )  # fmt: skip
    assert verified.evidence["elapsed_seconds"] >= LAG_S - 1, verified.evidence
    # Both hosts serve as they should once both servers agree: mx1 the MX and client name,
    # mx2 its backup MX, and mx2's own guard has not fenced it for the slow propagation.
    time.sleep(3 * lab.config.policy.interval + 5)  # a few guard leases past agreement
    for ns in lab.nameservers():
        assert mx_at(ns) == [f"10 {MX1}.", f"20 {MX2}."], mx_at(ns)
        assert _client_name_at(ns) == [lab.lab.host("mx1").address]
    for host in (MX1, MX2):
        assert not fencing.is_fenced(ssh_target(lab.config, host)), f"{host} is fenced"
    mx2 = lab.lab.host("mx2").address
    banner = control.exec_in("sender", ["bash", "-c", f"exec 3<>/dev/tcp/{mx2}/25; head -c 3 <&3"],
                             capture=True)  # fmt: skip
    assert banner.stdout == "220", banner
    status = lab.status()
    assert status["primary"] == MX1 and status["fenced"] == [], status
