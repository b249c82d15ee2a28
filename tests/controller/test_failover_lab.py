"""The failover controller on the lab: real crashes, real DNS, real mail (issues 6, 11).

Each test starts the `mxctl watch` controller on the machine and an `mxctl witness` in
sender's network namespace, injects a fault, and checks what the nameservers serve, what
mail is readable where, and what the journal says. The harness puts the lab back after.
"""

from __future__ import annotations

import signal
import smtplib
import socket
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import httpx
import pytest
from mxlab import control, guardfaults
from mxlab.control import MACHINE
from mxlab.controlled import ControlledLab, dump, mx_at, serial_at, write_config
from mxlab.mailclient import Imaps, find_by_subject, make_message, tls_context, wait_for
from mxlab.state import LabState, state_dir

from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.journal import Event
from orchestrator.remote import RemoteError, SshTarget

pytestmark = pytest.mark.lab

# Normal running: mx1, with the healthy unfenced standby as backup MX. After a failover:
# mx2 alone (the old primary is fenced, so out of the MX set).
MX1 = ["10 mx1.example.test.", "20 mx2.example.test."]
MX2 = ["10 mx2.example.test."]
USER = "alice@example.test"
INTERVAL, THRESHOLD = 1.0, 3


def send_via_sender(h: ControlledLab, subject: str) -> None:
    """Hand a message to `sender`'s MTA, which resolves the MX and delivers it."""
    msg = make_message("tester@sender.example.test", USER, subject)
    with smtplib.SMTP(h.lab.host("sender").address, 25, local_hostname="ci.example.test") as s:
        s.send_message(msg)


def readable_on(h: ControlledLab, host: str, subject: str, timeout: float) -> bool:
    password = (state_dir() / "secrets" / "mail-user-alice-at-example.test").read_text().strip()
    context = tls_context(h.lab.ca_cert)

    def look() -> bool | None:
        try:
            with Imaps(h.lab.host(host).address, "mail.example.test", context) as imap:
                imap.login(USER, password)
                return True if find_by_subject(imap, subject) else None
        except OSError:
            return None

    return wait_for(look, timeout, interval=0.2) is True


def wait_mx(
    h: ControlledLab, want: list[str], timeout: float, zone: str = "example.test"
) -> float | None:
    """Seconds until every nameserver serves `want` as the zone's MX, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if all(mx_at(ns, zone) == want for ns in h.nameservers()):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    return None


def healthy(h: ControlledLab) -> None:
    h.start_witness()
    h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 20, "a healthy cycle")


def test_primary_crash_moves_mx_to_standby_and_no_mail_is_lost(harness: ControlledLab) -> None:
    h = harness
    send_via_sender(h, "before-crash")
    assert readable_on(h, "mx1", "before-crash", 10)
    assert readable_on(h, "mx2", "before-crash", 5)  # replicated before the crash
    healthy(h)
    control.fault("mx1", "kill")
    took = wait_mx(h, MX2, 30)
    events = h.journal_events()
    assert took is not None, dump(events)
    # The bound: detection window (interval x threshold) + 2 s, at ns1 and ns2.
    assert took <= INTERVAL * THRESHOLD + 2, f"MX moved after {took:.1f} s\n{dump(events)}"
    # The zones are written one after the other: example.org follows within moments.
    assert wait_mx(h, MX2, 5, "example.org") is not None, dump(h.journal_events())
    h.wait_status(lambda s: s["primary"] == "mx2.example.test", 30, "the failover to finish")
    send_via_sender(h, "after-failover")
    assert readable_on(h, "mx2", "after-failover", 15)
    assert readable_on(h, "mx2", "before-crash", 5)
    steps = [(e.subject, e.status) for e in h.journal_events() if e.kind == "step"]
    for step in ("pre-hooks", "fence-old-primary", "rewrite-dns", "verify-dns"):
        assert (step, "done") in steps, dump(h.journal_events())
    status = h.status()
    assert status["primary"] == "mx2.example.test" and "mx1.example.test" in status["fenced"]


def test_primary_cut_off_from_the_controller_only_is_not_failed_over(
    harness: ControlledLab,
) -> None:
    h = harness
    healthy(h)
    control.fault("mx1", "partition", MACHINE)
    time.sleep(INTERVAL * (THRESHOLD + 3))
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    status = h.status()
    assert status["observations"]["controller"]["mx1.example.test"] == "failed"
    assert status["observations"]["sender"]["mx1.example.test"] == "up"
    reasons = [e.reason for e in h.journal_events() if e.kind == "decision"]
    assert any("unreachable, not dead" in r for r in reasons), reasons
    assert not any(e.kind == "step" for e in h.journal_events())


def test_flapping_primary_fails_over_at_most_once(harness: ControlledLab) -> None:
    h = harness
    healthy(h)
    controller = h.processes["controller"]
    health_url = f"http://127.0.0.1:{h.config.api.port}/health"
    unhealthy: list[str] = []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        control.fault("mx1", "kill")
        unhealthy += _unhealthy(health_url, 2)
        control.fault("mx1", "up")
        unhealthy += _unhealthy(health_url, 2)
    events = h.journal_events()
    runs = {e.run_id for e in events if e.kind == "step"}
    assert len(runs) <= 1, dump(events)
    # The controller stayed alive and answered healthy the whole time...
    assert controller.poll() is None, "the controller died while mx1 flapped"
    assert unhealthy == [], unhealthy
    metrics = httpx.get(f"http://127.0.0.1:{h.config.api.port}/metrics", timeout=2).text
    assert "mxctl_cycle_errors_total 0.0" in metrics
    # ...and DNS ended where the controller's state says mail goes, at every nameserver.
    status = h.wait_status(lambda s: s["failover_in_progress"] is None, 40, "no run under way")
    want = MX2 if status["primary"] == "mx2.example.test" else MX1
    assert wait_mx(h, want, 20) is not None, (status, dump(h.journal_events()))
    assert all(mx_at(ns, "example.org") == want for ns in h.nameservers())


def _unhealthy(url: str, seconds: float) -> list[str]:
    """Poll /health for `seconds`; every answer that is not a 200 ok."""
    bad, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            reply = httpx.get(url, timeout=2)
            if reply.status_code != 200 or not reply.json()["ok"]:
                bad.append(f"{reply.status_code} {reply.text[:200]}")
        except httpx.HTTPError as exc:
            bad.append(f"no answer: {exc}")
        time.sleep(0.25)
    return bad


def test_standby_down_alerts_only_and_both_down_changes_nothing(harness: ControlledLab) -> None:
    h = harness
    healthy(h)
    serial = serial_at(h.lab.host("ns1").address)
    control.fault("mx2", "kill")
    h.wait_status(lambda s: "standby mx2.example.test failed" in s["last_cycle"], 15, "alert")
    control.fault("mx1", "kill")
    time.sleep(INTERVAL * (THRESHOLD + 3))
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    assert serial_at(h.lab.host("ns1").address) == serial
    outcomes = [e.subject for e in h.journal_events() if e.kind == "decision"]
    assert "standby-dead" in outcomes and "both-dead" in outcomes, outcomes
    assert not any(e.kind == "step" for e in h.journal_events())


def test_controller_sigkilled_while_rewriting_dns_resumes_to_exactly_one_change(
    harness: ControlledLab,
) -> None:
    """Killed from outside at a journaled point: `rewrite-dns` started, not done. ns1 (the
    provider) is first cut off from the controller only (the mail hosts still resolve
    through it), so the step's first read hangs there, inside its deadline, while the
    journal says it started; the test SIGKILLs the process, heals the cut and starts a
    new controller, which must finish the same run with one change per zone."""
    h = harness
    h.start_witness()
    proc = h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 20, "a healthy cycle")
    ns1 = h.lab.host("ns1").address
    serials = {zone: serial_at(ns1, zone) for zone in ("example.test", "example.org")}
    try:
        control.fault("ns1", "partition", MACHINE)
        control.fault("mx1", "kill")
        started = _wait_event(h, "rewrite-dns", "started", 30)
        assert started is not None, dump(h.journal_events())
        proc.kill()  # SIGKILL: no clean-up, no last journal write
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        control.fault("ns1", "heal", MACHINE)
    events = h.journal_events()
    assert [(e.subject, e.status) for e in events if e.subject == "rewrite-dns"] == [
        ("rewrite-dns", "started")
    ], dump(events)
    assert ("fence-old-primary", "done") in [(e.subject, e.status) for e in events]
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    h.start_controller()
    assert wait_mx(h, MX2, 30) is not None, dump(h.journal_events())
    h.wait_status(lambda s: s["primary"] == "mx2.example.test", 30, "the run to finish")
    events = h.journal_events()
    dns_steps = [(e.status, e.run_id) for e in events if e.subject == "rewrite-dns"]
    assert [s for s, _ in dns_steps] == ["started", "started", "done"], dump(events)
    fence_runs = {e.run_id for e in events if e.subject == "fence-old-primary"}
    assert len({run for _, run in dns_steps} | fence_runs) == 1
    # One compare-and-swap UPDATE per zone (example.test: MX + mail A; example.org: MX),
    # each applied exactly once: one serial bump per zone, not two.
    assert {zone: serial_at(ns1, zone) - before for zone, before in serials.items()} == {
        "example.test": 1,
        "example.org": 1,
    }


def _wait_event(h: ControlledLab, subject: str, status: str, timeout: float) -> Event | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in h.journal_events():
            if (event.subject, event.status) == (subject, status):
                return event
        time.sleep(0.05)
    return None


def _fast_retries(h: ControlledLab, backoff: float) -> None:
    h.config_path.write_text(h.config_path.read_text().replace(
        "failover_deadline = 30",
        f"failover_deadline = 4\nretry_backoff = {backoff}\nretry_backoff_max = 8"))  # fmt: skip


def test_second_zone_write_fails_and_nothing_stays_half_applied(harness: ControlledLab) -> None:
    """Only example.org refuses the update (ns1 freezes that zone: BIND answers REFUSED):
    example.test has already moved and must be swapped back; the failover aborts, backs
    off, alerts, and lands in both zones once example.org takes updates again."""
    h = harness
    _fast_retries(h, 5)
    healthy(h)
    ns1 = h.lab.host("ns1").address
    before = serial_at(ns1, "example.test")
    frozen = control.exec_in("ns1", ["rndc", "freeze", "example.org"], capture=True)
    assert frozen.returncode == 0, frozen.stderr
    try:
        control.fault("mx1", "kill")
        aborted = h.wait_status(lambda s: "aborted at rewrite-dns" in s["last_cycle"], 40,
                                "the abort")  # fmt: skip
        # Nothing half-applied: the provider serves the old records in both zones at
        # once, and the secondary converges on them (NOTIFY) within seconds.
        ns1_view = (mx_at(ns1), mx_at(ns1, "example.org"), a_at(ns1, "mail.example.test"))
        assert ns1_view == (MX1, MX1, [h.lab.host("mx1").address]), dump(h.journal_events())
        assert wait_mx(h, MX1, 10) is not None, dump(h.journal_events())
        for ns in h.nameservers():
            assert mx_at(ns, "example.org") == MX1
            assert a_at(ns, "mail.example.test") == [h.lab.host("mx1").address]
        failed = [e for e in h.journal_events() if e.subject == "rewrite-dns"
                  and e.status == "failed"]  # fmt: skip
        assert failed, dump(h.journal_events())
        evidence = failed[0].evidence
        assert evidence["failed_zone"].rstrip(".") == "example.org"
        assert [z.rstrip(".") for z in evidence["swapped_back"]] == ["example.test"]
        assert serial_at(ns1, "example.test") - before == 2  # moved, then swapped back
        assert aborted["failover_in_progress"] is None and aborted["failed_attempts"] >= 1
        assert "failover-aborted" in [a["key"] for a in aborted["alerts"]]
    finally:
        control.exec_in("ns1", ["rndc", "thaw", "example.org"], capture=True)
    assert wait_mx(h, MX2, 40) is not None, dump(h.journal_events())
    assert wait_mx(h, MX2, 10, "example.org") is not None
    status = h.wait_status(lambda s: s["primary"] == "mx2.example.test", 30, "the failover")
    assert status["failed_attempts"] == 0


def test_abort_after_the_dns_rewrite_finishes_forward(harness: ControlledLab) -> None:
    """ns2 out of the controller's reach: verification fails after DNS moved. The same
    run is finished forward by the next attempts once ns2 answers again, never left with
    DNS and the state disagreeing."""
    h = harness
    _fast_retries(h, 2)
    healthy(h)
    control.fault("ns2", "partition", MACHINE)
    try:
        control.fault("mx1", "kill")
        waiting = h.wait_status(lambda s: "after DNS moved" in s["last_cycle"], 40, "the abort")
        assert waiting["failover_in_progress"] == "mx2.example.test"
        assert mx_at(h.lab.host("ns1").address) == MX2
        time.sleep(5)  # more attempts, all failing at verify-dns: none may start over
    finally:
        control.fault("ns2", "heal", MACHINE)
    status = h.wait_status(lambda s: s["primary"] == "mx2.example.test", 40, "finished forward")
    assert status["failover_in_progress"] is None
    assert wait_mx(h, MX2, 20) is not None
    events = h.journal_events()
    verify = [(e.status, e.run_id) for e in events if e.subject == "verify-dns"]
    assert ("failed", verify[0][1]) in verify and ("done", verify[0][1]) in verify, dump(events)
    assert len({run for _, run in verify}) == 1
    rewrites = [e.status for e in events if e.subject == "rewrite-dns"]
    assert rewrites == ["started", "done"], dump(events)  # DNS written once, never redone


def test_old_primary_back_after_failover_stays_fenced(harness: ControlledLab) -> None:
    h = harness
    healthy(h)
    control.fault("mx1", "kill")
    assert wait_mx(h, MX2, 30) is not None
    control.fault("mx1", "up")
    mx1 = h.lab.host("mx1").address
    target = ssh_target(h.config, "mx1.example.test")
    # Back, it has its fence (kept across the reboot, or put back by the controller)...
    assert wait_for(lambda: True if _fenced(target) else None, 30) is True
    # ...so a sending MTA cannot hand it a message, on any client port.
    with pytest.raises(OSError):
        send_direct(mx1, "to-the-old-primary")
    for port in (25, 587, 993):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((mx1, port), timeout=2).close()
    status = h.wait_status(
        lambda s: s["fenced_on_host"].get("mx1.example.test") is True, 20, "the fence seen"
    )
    assert status["primary"] == "mx2.example.test"
    assert "mx1.example.test" in status["fenced"]
    assert all(mx_at(ns) == MX2 for ns in h.nameservers())
    # The journals say who fenced it and why: the failover run (mx1 was down then, so
    # "fenced": false); then whichever came first once mx1 was back: its own guard, which
    # saw the MX at mx2 and demoted itself (journaled on mx1), or the controller's re-fence.
    events = h.journal_events()
    run_fence = [e for e in events if (e.subject, e.status) == ("fence-old-primary", "done")]
    assert run_fence and run_fence[0].evidence["host"] == "mx1.example.test", dump(events)
    refenced = [e for e in events if e.subject == "re-fence"]
    by_guard = "demoted: this host was primary" in guardfaults.guard_journal("mx1")
    assert run_fence[0].evidence["fenced"] or refenced or by_guard, dump(events)
    assert all(e.status == "fence" for e in refenced), dump(events)


def send_direct(address: str, subject: str) -> None:
    """Hand a message straight to one host's port 25, as a remote MTA would."""
    msg = make_message("tester@sender.example.test", USER, subject)
    with smtplib.SMTP(address, 25, local_hostname="ci.example.test", timeout=5) as s:
        s.send_message(msg)


def _fenced(target: SshTarget) -> bool | None:
    try:
        return fencing.is_fenced(target, 3) or None
    except RemoteError:
        return None


def a_at(address: str, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    query.flags = dns.flags.Flag(0)
    reply = dns.query.udp(query, address, timeout=1)
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def test_a_lagging_standby_is_not_promoted(deployed_pair: LabState, tmp_path: Path) -> None:
    config = write_config(deployed_pair, tmp_path, canary_every=2, max_replication_lag=5)
    h = ControlledLab(deployed_pair, tmp_path, config)
    try:
        healthy(h)
        h.wait_status(lambda s: s["replication_lag_s"] is not None, 30, "a first canary")
        control.fault("mx1", "partition", "mx2")  # replication between them stops
        h.wait_status(lambda s: (s["replication_lag_s"] or 0) > 5, 60, "the lag to show")
        control.fault("mx1", "kill")
        time.sleep(INTERVAL * (THRESHOLD + 3))
        assert all(mx_at(ns) == MX1 for ns in h.nameservers()), dump(h.journal_events())
        assert "lags" in h.status()["last_cycle"]
        outcomes = {e.subject for e in h.journal_events() if e.kind == "decision"}
        assert "standby-lagging" in outcomes, outcomes
    finally:
        h.restore()
