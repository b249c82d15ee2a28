"""The mail hosts' own firewall and self-fence guard on the lab (issues 10 and 11).

- The replication port answers the peer only, fenced or not, and replication still works.
- After a failover to mx2, an mx1 that thaws, reboots or gets its link back refuses every
  client connection from the first attempt: clients poll it as fast as they can from
  `sender`'s namespace and from the machine, and try to hand it a message over SMTP.

DNS is moved by hand with the lab's TSIG key (as the controller's rewrite-dns step does)
and no controller runs, so what closes mx1 is its own guard and nothing else. The figures
(attempts, accepted connections, the guard's reaction time) are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.hostguard import install
from orchestrator.lab import control
from orchestrator.lab.controlled import ControlledLab, mx_at
from tests.controller.clientpoll import PollResult, poll
from tests.deploy.mailclient import wait_for

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
MX1, MX2 = ["10 mx1.example.test."], ["10 mx2.example.test."]
REPLICATION_PORT = 12345


def connect(address: str, port: int, timeout: float = 1.0) -> str:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error: {exc}"


def connect_from(h: ControlledLab, host: str, address: str, port: int) -> str:
    """The same check from inside a lab host (its own address as the source)."""
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=1).close(); print('open')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('error:', e)\n"
    )
    return control.exec_in(host, ["python3", "-c", code], capture=True).stdout.strip()


def move_dns(h: ControlledLab, to: str, want: list[str]) -> None:
    config = h.config
    provider = make_provider(config.dns)
    try:
        apply_plan(build_plan(config.dns, provider, to), config.dns, provider)
    finally:
        provider.close()
    served = wait_for(lambda: all(mx_at(ns) == want for ns in h.nameservers()) or None, 15, 0.05)
    assert served, f"nameservers do not serve {want}"


def guard_status(host: str) -> dict[str, object]:
    out = control.exec_in(host, ["cat", install.STATUS_FILE], capture=True).stdout
    return dict(json.loads(out)) if out.strip() else {}


def guard_journal(host: str) -> str:
    return control.exec_in(
        host, ["journalctl", "-u", install.UNIT, "--no-pager", "-o", "cat"], capture=True
    ).stdout


def serving_baseline(h: ControlledLab) -> None:
    """mx1 primary and open, mx2 standby: what every scenario starts from."""
    mx1 = h.lab.host("mx1").address
    assert wait_for(lambda: guard_status("mx1").get("role") == "primary" or None, 15, 0.2)
    assert wait_for(lambda: connect(mx1, 25) == "open" or None, 15, 0.2)
    # The secondary lags the primary nameserver by a second or so after the last restore.
    assert wait_for(lambda: guard_status("mx2").get("role") == "standby" or None, 15, 0.2)


def test_replication_port_answers_the_peer_only_fenced_or_not(harness: ControlledLab) -> None:
    h = harness
    mx1 = h.lab.host("mx1").address
    sender_netns = h.lab.host("sender").netns

    def from_sender() -> str:
        return connect_from(h, "sender", mx1, REPLICATION_PORT)

    def check_peer_only() -> None:
        assert connect(mx1, REPLICATION_PORT) == "refused"  # the machine: not the peer
        assert from_sender() == "refused"
        assert connect_from(h, "mx2", mx1, REPLICATION_PORT) == "open"  # the peer
        assert connect_from(h, "mx1", h.lab.host("mx2").address, REPLICATION_PORT) == "open"

    assert sender_netns
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
    found = wait_for(
        lambda: (
            control.exec_in("mx2", ["sh", "-c", count], capture=True).stdout.strip() == "1" or None
        ),
        30,
        0.2,
    )
    assert found, "a message delivered on the fenced mx1 never reached mx2"


def _sender_poller(h: ControlledLab, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", h.lab.host("sender").netns, sys.executable, "-m",
         "tests.controller.clientpoll", "--vantage", "sender", "--address",
         h.lab.host("mx1").address, "--stop-file", str(stop)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _report(
    fault: str, results: list[PollResult], reverse_at: float, status: dict[str, object]
) -> None:
    decided = float(str(status.get("decided_at", 0)))
    lines = [
        f"guard after {fault}: first decision {decided - reverse_at:.2f} s after the reverse action"
    ]
    for r in results:
        rate = r.attempts / max(r.stopped_at - r.started_at, 1e-6)
        lines.append(
            f"  {r.vantage}: {r.attempts} connects ({rate:.0f}/s), {len(r.accepted)} accepted, "
            f"{r.refused} refused, {r.other_errors} errors; {r.smtp_attempts} SMTP handoffs, "
            f"{len(r.smtp_delivered)} delivered"
        )
    print("\n".join(lines), file=sys.__stdout__)


SCENARIOS = {
    "freeze": ("freeze", "thaw"),
    "reboot": ("down", "up"),
    "link": ("link-down", "link-up"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_old_primary_refuses_every_client_after_a_failover(
    harness: ControlledLab, scenario: str, tmp_path: Path
) -> None:
    h = harness
    fault, reverse = SCENARIOS[scenario]
    serving_baseline(h)
    control.fault("mx1", fault)
    if scenario == "link":
        # Cut off, the guard closes at once: nobody can reach it, and a restored link
        # must start closed. Read over nsenter (SSH is cut too).
        closed = wait_for(lambda: guard_status("mx1").get("open") == [] or None, 10, 0.1)
        assert closed, guard_status("mx1")
        assert "own link down" in str(guard_status("mx1")["reason"])
    else:
        time.sleep(4)  # longer than the lease (3 s): the controller takes longer to detect
    move_dns(h, "mx2.example.test", MX2)  # the failover, as the controller does it
    assert wait_for(lambda: guard_status("mx2").get("role") == "primary" or None, 10, 0.1)

    stop = tmp_path / "stop"
    machine_stop = threading.Event()
    sender = _sender_poller(h, stop)
    machine: list[PollResult] = []
    thread = threading.Thread(
        target=lambda: machine.append(poll("machine", h.lab.host("mx1").address, machine_stop))
    )
    thread.start()
    try:
        time.sleep(1)  # the pollers are running before mx1 comes back
        reverse_at = time.time()
        control.fault("mx1", reverse)
        demoted = wait_for(
            lambda: (
                (
                    (s := guard_status("mx1")).get("role") == "demoted"
                    and float(str(s.get("decided_at", 0))) > reverse_at
                    and s
                )
                or None
            ),
            30,
            0.05,
        )
        time.sleep(3)  # keep hammering after the guard decided
    finally:
        stop.touch()
        machine_stop.set()
        thread.join()
        out, _ = sender.communicate(timeout=30)
    from_sender = PollResult(**json.loads(out))
    results = [from_sender, machine[0]]
    assert demoted, f"the guard on mx1 never demoted itself: {guard_status('mx1')}"
    _report(scenario, results, reverse_at, demoted)
    for r in results:
        assert r.attempts > 50, f"{r.vantage} barely polled: {r}"
        assert not r.accepted, f"{r.vantage}: mx1 accepted client connections: {r.accepted}"
        assert r.smtp_attempts > 0 and not r.smtp_delivered, f"{r.vantage}: mx1 took mail"
    journal = guard_journal("mx1")
    assert "demoted: this host was primary" in journal, journal[-2000:]
    assert "mx2.example.test" in journal
    assert fencing.is_fenced(ssh_target(h.config, "mx1.example.test"))
    assert connect(h.lab.host("mx1").address, 22) == "open"  # fenced, not unreachable
