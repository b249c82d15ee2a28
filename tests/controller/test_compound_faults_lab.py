"""Faults that come two at a time, on the lab (issue 11): an observer lost before the
primary dies, replication cut under a healthy primary, a hung primary that thaws after
the failover. Each prints the figure the issue asks for (run with -s to see it); speed is
reported, never asserted.
"""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mxlab import control
from mxlab.controlled import MXCTL, ControlledLab, dump, mx_at, write_config
from mxlab.state import LabState
from mxlab.webhooks import WebhookReceiver

from tests.controller.test_failover_lab import MX1, MX2, healthy, send_via_sender, wait_mx

pytestmark = pytest.mark.lab


@pytest.fixture
def hooked(
    deployed_pair: LabState, tmp_path: Path
) -> Iterator[tuple[ControlledLab, WebhookReceiver]]:
    hooks = WebhookReceiver()
    config = write_config(deployed_pair, tmp_path)
    config.write_text(config.read_text() + f'\n[notify]\nwebhooks = ["{hooks.url}"]\n')
    h = ControlledLab(deployed_pair, tmp_path, config)
    h.restore()  # from whatever the last user left (`make demo` leaves it failed over)
    try:
        yield h, hooks
    finally:
        h.restore()
        hooks.close()


def test_witness_down_then_primary_crash_still_fails_over(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    """The only witness is gone (its process stopped): the controller and the standby's
    own view still make a majority of the three configured observers."""
    h, _ = hooked
    healthy(h)
    h.stop("witness")
    status = h.wait_status(
        lambda s: any(r["observer"] == "sender" and r["note"] for r in s["observers"]),
        20,
        "the witness to abstain",
    )
    assert "healthy" in status["last_cycle"], status["last_cycle"]
    crashed = time.monotonic()
    control.fault("mx1", "kill")
    took = wait_mx(h, MX2, 60)
    events = h.journal_events()
    assert took is not None, dump(events)
    assert wait_mx(h, MX2, 5, "example.org") is not None
    promoted = [e for e in events if e.subject == "primary-dead"]
    assert promoted and "sender abstain" in promoted[-1].reason, dump(events)
    votes = promoted[-1].evidence["observations"]
    assert votes["controller"]["mx1.example.test"] == "failed"
    assert votes["standby:mx2"]["mx1.example.test"] == "failed"
    print(f"\nFIGURE failover with the witness down: MX at every nameserver "
          f"{time.monotonic() - crashed:.1f} s after the crash")  # fmt: skip


def test_witness_down_and_primary_cut_off_from_the_controller_is_not_failed_over(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    """A missing observer never causes a failover: only the controller loses mx1, the
    standby still sees it, the witness is gone: no quorum to call it dead."""
    h, _ = hooked
    healthy(h)
    h.stop("witness")
    control.fault("mx1", "partition", control.MACHINE)
    time.sleep(8)
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    assert not any(e.kind == "step" for e in h.journal_events()), dump(h.journal_events())
    rows = {r["observer"]: r for r in h.status()["observers"]}
    assert rows["standby:mx2"]["votes"]["mx1.example.test"] == "up"
    assert rows["controller"]["votes"]["mx1.example.test"] == "failed"


def test_replication_cut_is_an_alert_within_one_canary_period(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    h, hooks = hooked
    healthy(h)
    h.wait_status(lambda s: s["replication_lag_s"] is not None, 40, "a first canary")
    send_via_sender(h, "before-the-cut")
    cut = time.monotonic()
    control.fault("mx1", "partition", "mx2")
    every = h.config.probes.canary_every
    opened = hooks.first("replication-broken", "open", every + 30)
    assert opened is not None, dump(h.journal_events())
    status = h.status()
    assert "replication-broken" in [a["key"] for a in status["alerts"]]
    assert status["primary"] == "mx1.example.test"  # an alert, not a failover
    print(f"\nFIGURE replication cut -> alert at the webhook: {opened - cut:.1f} s "
          f"(canary every {every:g} s)")  # fmt: skip
    control.fault("mx1", "heal", "mx2")
    resolved = hooks.first("replication-broken", "resolved", 3 * every + 30)
    assert resolved is not None, dump(h.journal_events())
    opens = [b for _, b in hooks.got if b.get("alert") == "replication-broken"]
    assert [b["state"] for b in opens] == ["open", "resolved"]  # once each, deduplicated


def test_hung_primary_that_thaws_after_the_failover_is_fenced_again(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    h, _ = hooked
    healthy(h)
    control.fault("mx1", "freeze")
    assert wait_mx(h, MX2, 60) is not None, dump(h.journal_events())
    h.wait_status(lambda s: s["primary"] == "mx2.example.test", 30, "the failover")
    mx1 = h.lab.host("mx1").address
    thawed = time.monotonic()
    control.fault("mx1", "thaw")
    last_greeting = None
    while time.monotonic() - thawed < 20:
        try:
            with smtplib.SMTP(mx1, 25, timeout=1) as smtp:
                smtp.noop()
                last_greeting = time.monotonic()
        except (OSError, smtplib.SMTPException):
            if time.monotonic() - thawed > 5:
                break
        time.sleep(0.05)
    status = h.wait_status(lambda s: s["fenced_on_host"].get("mx1.example.test") is True, 20,
                           "mx1 fenced again")  # fmt: skip
    assert status["primary"] == "mx2.example.test" and "mx1.example.test" in status["fenced"]
    with pytest.raises(OSError):
        smtplib.SMTP(mx1, 25, timeout=2).quit()
    window = 0.0 if last_greeting is None else last_greeting - thawed
    print(f"\nFIGURE thawed old primary answered SMTP for {window:.1f} s after the thaw")


def test_a_planned_move_made_pointless_by_a_failover_is_dropped_not_left_to_jam(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    """`switchover --to mx2 --at later`, then mx1 crashes and the controller fails over to
    mx2 first: the intent is dropped with its reason (the waiting command says so), the
    loop keeps deciding, and `maintenance run --host mx1` is refused up front."""
    h, _ = hooked
    healthy(h)
    at = (datetime.now(UTC) + timedelta(seconds=45)).isoformat()
    waiting = subprocess.Popen(
        [MXCTL, "switchover", "--to", "mx2", "--at", at, "--config", str(h.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        h.wait_status(lambda s: True, 5, "the controller")
        time.sleep(2)  # the intent is journaled and pending
        control.fault("mx1", "kill")
        assert wait_mx(h, MX2, 60) is not None, dump(h.journal_events())
        out, _ = waiting.communicate(timeout=30)  # dropped long before its time
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 1, out
    assert "dropped" in out and "already the primary" in out, out
    events = h.journal_events()
    assert [e.status for e in events if e.kind == "intent"] == ["dropped"], dump(events)
    assert not any(e.kind == "step" and e.run_id and e.run_id.startswith("switchover")
                   for e in events)  # fmt: skip
    status = h.wait_status(lambda s: "planned move" not in s["last_cycle"], 10, "cycles go on")
    assert status["primary"] == "mx2.example.test" and status["health"]["ok"]
    refused = subprocess.run(
        [MXCTL, "maintenance", "run", "--host", "mx1", "--config", str(h.config_path),
         "--", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "is not the primary now" in refused.stdout + refused.stderr


def test_an_abort_after_fencing_unfences_a_reachable_healthy_old_primary(
    hooked: tuple[ControlledLab, WebhookReceiver],
) -> None:
    """mx1's daemons hang (SIGSTOP; sshd still answers): every observer calls it dead and
    the controller fences it; the DNS write then fails (example.org refuses it). DNS still
    sends mail to mx1, so the roll-back must un-fence it: once its daemons run again, it
    takes mail and nothing is fenced."""
    h, hooks = hooked
    h.config_path.write_text(h.config_path.read_text().replace(
        "failover_deadline = 30", "failover_deadline = 4\nretry_backoff = 30"))  # fmt: skip
    healthy(h)
    units = ["postfix@-.service", "dovecot.service"]
    frozen = control.exec_in("ns1", ["rndc", "freeze", "example.org"], capture=True)
    assert frozen.returncode == 0, frozen.stderr
    try:
        control.exec_in("mx1", ["systemctl", "kill", "-s", "STOP", *units], capture=True)
        h.wait_status(lambda s: "aborted at rewrite-dns" in s["last_cycle"], 40, "the abort")
    finally:
        control.exec_in("mx1", ["systemctl", "kill", "-s", "CONT", *units], capture=True)
        control.exec_in("ns1", ["rndc", "thaw", "example.org"], capture=True)
    events = h.journal_events()
    steps = [(e.subject, e.status) for e in events if e.kind == "step"]
    assert ("fence-old-primary", "done") in steps, dump(events)
    assert ("unfence-old-primary", "done") in steps, dump(events)
    assert steps.index(("check-new-primary", "done")) < steps.index(("fence-old-primary", "done"))
    status = h.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "mx1 serving again")
    assert status["primary"] == "mx1.example.test" and status["fenced"] == []
    assert status["fenced_on_host"].get("mx1.example.test") is False
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    with smtplib.SMTP(h.lab.host("mx1").address, 25, timeout=5) as smtp:
        assert smtp.noop()[0] == 250
    aborted = [b for _, b in hooks.got if b.get("alert") == "failover-aborted"]
    assert [b["state"] for b in aborted][:1] == ["open"], hooks.got
