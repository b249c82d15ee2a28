"""The mail hosts' own firewall and self-fence guard on the lab.

- The replication port answers the peer only, fenced or not, and replication still works.
- After a failover to mx2, an mx1 that thaws, reboots or gets its link back refuses every
  client connection from the first attempt: clients poll it as fast as they can from
  `sender`'s namespace and from the machine and try to hand it messages over SMTP (see
  lab/mxlab/guardfaults.py). The figures are printed (`pytest -s`); bench/guard.py
  repeats the runs.
- A move whose rewrite reaches ns2 seconds after ns1 (ns1 and ns2 partitioned meanwhile)
  leaves the old primary open all along and then a standby, not self-fenced.
- A primary cut off from both nameservers closes one lease after its last confirmation.
- A dead primary that lets SSH in but fails every command (out of processes) cannot be
  fenced: the failover waits out its guard's lease instead, journals that, and goes on.
- A standby its guard fenced is named as such, and `mxctl unfence` lifts the fence while
  DNS lists it as backup MX, and refuses once DNS does not.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from mxlab import control, guardfaults
from mxlab.controlled import ControlledLab, dump, mx_at
from mxlab.mailclient import wait_for
from mxlab.topology import ZONES

from orchestrator.cli.fence_cmd import print_fence_notes
from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.unfencing import GUARD_MARK
from orchestrator.deploy.hostfiles import REPLICATION_STATUS, REPLICATION_USERS
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan

pytestmark = pytest.mark.lab

REPLICATION_PORT = 12345
LEASE = 3.0  # mail_guard_lease on the lab
LAG = 8.0  # s ns2 serves the old records after ns1 the new ones (the report's figure)


def connect(address: str, port: int, timeout: float = 1.0) -> str:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error: {exc}"


def connect_from(host: str, address: str, port: int) -> str:
    """The same check from inside a lab host (its own address as the source)."""
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=1).close(); print('open')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('error:', e)\n"
    )
    return control.exec_in(host, ["python3", "-c", code], capture=True).stdout.strip()


def test_replication_port_answers_the_peer_only_fenced_or_not(harness: ControlledLab) -> None:
    h = harness
    mx1, mx2 = h.lab.host("mx1").address, h.lab.host("mx2").address

    def check_peer_only() -> None:
        assert connect(mx1, REPLICATION_PORT) == "refused"  # the machine: not the peer
        assert connect_from("sender", mx1, REPLICATION_PORT) == "refused"
        assert connect_from("mx2", mx1, REPLICATION_PORT) == "open"  # the peer
        assert connect_from("sender", mx2, REPLICATION_PORT) == "refused"
        assert connect_from("mx1", mx2, REPLICATION_PORT) == "open"

    check_peer_only()
    target = ssh_target(h.config, "mx1.example.test")
    result = fencing.fence(target, "test: replication port while fenced")
    assert result.fenced and "peer-only" in result.detail, result.detail
    check_peer_only()
    assert connect(mx1, 25) == "refused"
    # Replication still flows while fenced: a message delivered locally on mx1 (LMTP,
    # not through the fenced ports) must become readable on mx2.
    subject = f"replicated-while-fenced-{time.time():.0f}"
    deliver = control.exec_in(
        "mx1",
        ["sh", "-c", f"printf 'Subject: {subject}\\n\\nbody\\n' | sendmail alice@example.test"],
        capture=True,
    )
    assert deliver.returncode == 0, deliver.stderr
    count = f"doveadm search -u alice@example.test mailbox INBOX header subject {subject} | wc -l"

    def on_mx2() -> bool | None:
        out = control.exec_in("mx2", ["sh", "-c", count], capture=True).stdout.strip()
        return out == "1" or None

    # Normally a second or two. The bound is Dovecot 2.3's replication_dsync_timeout (2 min):
    # a sync of this user queued behind a session an earlier test's resync left running
    # waits for that one to end.
    if not wait_for(on_mx2, 150, 0.5):
        status = control.exec_in(
            "mx1", ["sh", "-c", f"{REPLICATION_USERS}; {REPLICATION_STATUS}"], capture=True
        )
        raise AssertionError(f"a message delivered on the fenced mx1 never reached mx2:\n"
                             f"{status.stdout}{status.stderr}")  # fmt: skip


@pytest.mark.parametrize("scenario", sorted(guardfaults.SCENARIOS))
def test_old_primary_refuses_every_client_after_a_failover(
    harness: ControlledLab, scenario: str, tmp_path: Path
) -> None:
    run = guardfaults.run(harness, scenario, tmp_path)
    print(run.summary(), file=sys.__stdout__)
    if scenario == "link":
        assert run.closed_while_cut.get("open") == [], run.closed_while_cut
        assert "own link down" in str(run.closed_while_cut.get("reason"))
    assert run.decision.get("role") == "demoted", f"mx1's guard: {run.decision}"
    for poll in run.polls:
        assert poll.attempts > 50, f"{poll.vantage} barely polled: {poll}"
        assert poll.smtp_attempts > 0, f"{poll.vantage} never tried to hand a message"
    assert not run.accepted, f"mx1 accepted client connections: {run.accepted}"
    assert not any(p.smtp_delivered for p in run.polls), "mx1 took a message"
    journal = guardfaults.guard_journal("mx1")
    assert "demoted: this host was primary" in journal, journal[-2000:]
    assert "MX example.test -> mx2.example.test" in journal
    assert fencing.is_fenced(ssh_target(harness.config, "mx1.example.test"))
    assert connect(harness.lab.host("mx1").address, 22) == "open"  # fenced, not unreachable


def test_a_live_move_leaves_the_old_primary_an_open_unfenced_standby(
    harness: ControlledLab,
) -> None:
    """A planned move (switchover, switchback) happens while the old primary's guard is
    watching: it becomes the standby, stays open for probes and is not fenced."""
    guardfaults.serving_baseline(harness)
    seen = len(guardfaults.guard_journal("mx1").splitlines())
    guardfaults.move_dns(harness, "mx2.example.test")
    status = guardfaults.wait_until(
        lambda: (s := guardfaults.guard_status("mx1")).get("role") == "standby" and s, 10
    )
    assert status, guardfaults.guard_status("mx1")
    since_move = guardfaults.guard_journal("mx1").splitlines()[seen:]
    assert any("a live handover" in line for line in since_move), since_move
    assert not any("demoted" in line for line in since_move), since_move
    assert not fencing.is_fenced(ssh_target(harness.config, "mx1.example.test"))
    assert connect(harness.lab.host("mx1").address, 25) == "open"
    assert guardfaults.wait_until(
        lambda: guardfaults.guard_status("mx2").get("role") == "primary", 10
    )


def rewrite_at_ns1(h: ControlledLab, to: str) -> None:
    """The controller's rewrite (TSIG update at ns1), without waiting for ns2."""
    provider = make_provider(h.config.dns)
    try:
        apply_plan(build_plan(h.config.dns, provider, to), h.config.dns, provider)
    finally:
        provider.close()


def test_a_move_that_reaches_ns2_seconds_after_ns1_leaves_the_old_primary_a_standby(
    harness: ControlledLab,
) -> None:
    h = harness
    guardfaults.serving_baseline(h)
    ns1, ns2 = (h.lab.host(name).address for name in ("ns1", "ns2"))
    mx1 = h.lab.host("mx1").address
    seen = len(guardfaults.guard_journal("mx1").splitlines())
    moved = ["10 mx2.example.test."]
    control.fault("ns1", "partition", "ns2")
    try:
        rewrite_at_ns1(h, "mx2.example.test")
        assert guardfaults.wait_until(lambda: mx_at(ns1) == moved, 10), mx_at(ns1)
        time.sleep(LAG)
        assert mx_at(ns2) != moved, "ns2 got the rewrite through the partition"
        during = guardfaults.guard_status("mx1")
        # Heard both servers all along: still the primary, its lease renewed.
        assert during.get("role") == "primary" and during.get("open"), during
        assert connect_from("sender", mx1, 25) == "open"
    finally:
        control.fault("ns1", "heal", "ns2")
    for zone in ZONES:  # at once, rather than at BIND's next NOTIFY retry
        control.exec_in("ns2", ["rndc", "retransfer", zone], capture=True)
    assert guardfaults.wait_until(lambda: mx_at(ns2) == moved, 10), mx_at(ns2)
    status = guardfaults.wait_until(
        lambda: (s := guardfaults.guard_status("mx1")).get("role") in ("standby", "demoted") and s,
        10,
    )
    since_move = guardfaults.guard_journal("mx1").splitlines()[seen:]
    assert status and status["role"] == "standby", (status, since_move)
    assert any("propagated slowly" in line for line in since_move), since_move
    assert not any("demoted" in line for line in since_move), since_move
    assert not fencing.is_fenced(ssh_target(h.config, "mx1.example.test"))
    assert connect_from("sender", mx1, 25) == "open"


def test_a_primary_cut_off_from_both_nameservers_closes_within_its_lease(
    harness: ControlledLab,
) -> None:
    h = harness
    guardfaults.serving_baseline(h)
    mx1 = h.lab.host("mx1").address
    assert connect_from("sender", mx1, 25) == "open"
    cut_at = time.time()
    for ns in ("ns1", "ns2"):
        control.fault("mx1", "partition", ns)
    try:
        closed = guardfaults.wait_until(
            lambda: (s := guardfaults.guard_status("mx1")).get("open") == [] and s, 3 * LEASE
        )
        assert closed, guardfaults.guard_status("mx1")
        after = float(closed["decided_at"]) - cut_at
        print(f"mx1 closed {after:.2f} s after it was cut off (lease {LEASE:g} s)",
              file=sys.__stdout__)  # fmt: skip
        assert closed["role"] == "primary", closed  # no failover happened: not demoted
        assert "no authoritative server answered" in closed["reason"], closed
        assert connect_from("sender", mx1, 25) == "refused"
        assert connect_from("sender", mx1, 993) == "refused"
    finally:
        for ns in ("ns1", "ns2"):
            control.fault("mx1", "heal", ns)
    reopened = guardfaults.wait_until(
        lambda: (
            (s := guardfaults.guard_status("mx1")).get("role") == "primary"
            and s.get("open") == ["clients", "smtp"]
        ),
        10,
    )
    assert reopened, guardfaults.guard_status("mx1")
    assert not fencing.is_fenced(ssh_target(h.config, "mx1.example.test"))


def test_a_failover_whose_old_primary_cannot_act_waits_out_its_guard_and_goes_on(
    harness: ControlledLab,
) -> None:
    h = harness
    h.start_witness()
    h.start_controller()
    # Healthy cycles read mx1's fence state, and with it what its guard says.
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 20, "a healthy cycle")
    control.fault("mx1", "cannot-act")
    control.exec_in("mx1", ["systemctl", "stop", "postfix", "dovecot"], capture=True)
    h.wait_status(lambda s: s["primary"] == "mx2.example.test", 60, "the failover to mx2")
    events = h.journal_events()
    steps = {(e.subject, e.status): e for e in events if e.kind == "step"}
    fence = steps.get(("fence-old-primary", "done"))
    assert fence is not None, dump(events)
    assert fence.evidence.get("fenced_by_guard") is True, fence.evidence
    assert fence.evidence.get("waited_s") == LEASE + 1 + 1, fence.evidence  # interval 1 s
    assert "fork" in str(fence.evidence.get("detail")), fence.evidence
    started = steps[("fence-old-primary", "started")].at
    rewrite = steps[("rewrite-dns", "started")].at
    waited = (datetime.fromisoformat(rewrite) - datetime.fromisoformat(started)).total_seconds()
    assert waited >= LEASE + 2, f"DNS moved {waited:.1f} s after the fence began"
    assert ("verify-dns", "done") in steps, dump(events)
    assert all(mx_at(ns) == ["10 mx2.example.test."] for ns in h.nameservers())


def mxctl(h: ControlledLab, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).with_name("mxctl")), *args, "--config", str(h.config_path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_guard_fenced_standby_is_named_and_unfenced_by_hand_only_while_dns_lists_it(
    harness: ControlledLab, capsys: pytest.CaptureFixture[str]
) -> None:
    h = harness
    guardfaults.serving_baseline(h)  # mx1 primary, mx2 its backup MX
    mx2 = ssh_target(h.config, "mx2.example.test")
    reason = f"{GUARD_MARK}: demoted: test"
    assert fencing.fence(mx2, reason).fenced
    print_fence_notes(h.config)
    said = capsys.readouterr().out
    assert "mx2.example.test is fenced by its own guard (demoted: test)" in said, said
    assert "`mxctl unfence mx2`" in said
    done = mxctl(h, "unfence", "mx2")
    assert done.returncode == 0, done.stderr
    assert "mx2.example.test unfenced" in done.stdout, done.stdout
    assert not fencing.is_fenced(mx2)
    assert guardfaults.wait_until(
        lambda: guardfaults.guard_status("mx2").get("open") == ["clients", "smtp"], 10
    ), guardfaults.guard_status("mx2")
    rewrite_at_ns1(h, "mx1.example.test")  # mx1 alone: mx2 no longer the backup MX
    assert guardfaults.wait_until(
        lambda: all(mx_at(ns) == ["10 mx1.example.test."] for ns in h.nameservers()), 10
    )
    assert fencing.fence(mx2, reason).fenced
    refused = mxctl(h, "unfence", "mx2")
    assert refused.returncode != 0, refused.stdout
    assert "neither as primary nor as backup MX" in refused.stderr, refused.stderr
    assert fencing.is_fenced(mx2)
    journal = [e for e in h.journal_events() if e.kind == "operator" and e.subject == "unfence"]
    assert [e.status for e in journal] == ["done", "refused"], journal
