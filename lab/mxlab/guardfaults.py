"""An old primary coming back after a failover, hammered by clients: the guard's lab run.

One run: mx1 serving; a fault on mx1 (freeze, crash, link cut); DNS moved to mx2 with
the lab's TSIG key, as the controller's rewrite-dns step does (no controller runs, so
what closes mx1 is its own guard and nothing else); clients poll mx1's client ports as
fast as they can from `sender`'s namespace and from the machine and try to hand it
messages over SMTP; the fault is reversed (thaw, boot, link restored); polling goes on
until mx1's guard has decided, and a few seconds more. Used by
tests/controller/test_hostguard_lab.py (assertions) and bench/guard.py (figures).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mxlab import control
from mxlab.clientpoll import PollResult, poll
from mxlab.controlled import ControlledLab, mx_at
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.errors import LabError
from orchestrator.hostguard import install

SCENARIOS = {
    "freeze": ("freeze", "thaw"),
    "reboot": ("kill", "up"),
    "link": ("link-down", "link-up"),
}
LEASE_MARGIN = 4.0  # s a host stays frozen or down before DNS moves (> the 3 s lease)


def wait_until(check: Any, timeout: float, interval: float = 0.05) -> Any:
    """The first truthy value of `check()`, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def guard_status(host: str) -> dict[str, Any]:
    out = control.exec_in(host, ["cat", install.STATUS_FILE], capture=True).stdout
    try:
        return dict(json.loads(out)) if out.strip() else {}
    except ValueError:
        return {}  # caught mid-write


def guard_journal(host: str) -> str:
    return control.exec_in(
        host, ["journalctl", "-u", install.UNIT, "--no-pager", "-o", "cat"], capture=True
    ).stdout


def move_dns(h: ControlledLab, to: str) -> None:
    config = h.config
    provider = make_provider(config.dns)
    try:
        apply_plan(build_plan(config.dns, provider, to), config.dns, provider)
    finally:
        provider.close()
    want = [f"10 {to}."]
    if not wait_until(lambda: all(mx_at(ns) == want for ns in h.nameservers()), 15):
        raise LabError(f"the nameservers do not serve MX {to}")


@dataclass(frozen=True)
class GuardRun:
    scenario: str
    polls: tuple[PollResult, ...]
    reverse_at: float  # wall time the reverse action (thaw, boot, link up) started
    decision: dict[str, Any]  # mx1's guard status after its first round since then
    closed_while_cut: dict[str, Any]  # link scenario: the guard's status while cut off

    @property
    def reaction(self) -> float:
        return float(self.decision.get("decided_at", 0)) - self.reverse_at

    @property
    def accepted(self) -> list[tuple[str, float, int]]:
        return [(p.vantage, at, port) for p in self.polls for at, port in p.accepted]

    @property
    def window(self) -> float:
        """Seconds from the reverse action to the last client connection mx1 accepted."""
        return max((at - self.reverse_at for _, at, _ in self.accepted), default=0.0)

    def summary(self) -> str:
        lines = [
            f"{self.scenario}: guard decided {self.reaction:.2f} s after the reverse action "
            f"({self.decision.get('role')}); client window {self.window:.2f} s"
        ]
        for p in self.polls:
            rate = p.attempts / max(p.stopped_at - p.started_at, 1e-6)
            lines.append(
                f"  {p.vantage}: {p.attempts} connects ({rate:.0f}/s), {len(p.accepted)} "
                f"accepted, {p.refused} refused, {p.other_errors} other errors; "
                f"{p.smtp_attempts} SMTP handoffs, {len(p.smtp_delivered)} delivered"
            )
        return "\n".join(lines)


def serving_baseline(h: ControlledLab) -> None:
    """mx1 primary and open, mx2 standby: what every run starts from."""
    checks = [
        ("mx1's guard says primary", lambda: guard_status("mx1").get("role") == "primary"),
        # The secondary lags the primary nameserver by a second or so after a restore.
        ("mx2's guard says standby", lambda: guard_status("mx2").get("role") == "standby"),
    ]
    for what, check in checks:
        if not wait_until(check, 20, 0.2):
            raise LabError(f"not serving as expected: {what} never came")


def _sender_poller(h: ControlledLab, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", h.lab.host("sender").netns, sys.executable, "-m",
         "mxlab.clientpoll", "--vantage", "sender", "--address",
         h.lab.host("mx1").address, "--stop-file", str(stop)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def run(h: ControlledLab, scenario: str, workdir: Path, linger: float = 3.0) -> GuardRun:
    fault, reverse = SCENARIOS[scenario]
    serving_baseline(h)
    control.fault("mx1", fault)
    closed_while_cut: dict[str, Any] = {}
    if scenario == "link":
        # Read over nsenter: SSH is cut too.
        closed_while_cut = wait_until(
            lambda: (s := guard_status("mx1")).get("open") == [] and s, 10
        ) or guard_status("mx1")
    else:
        time.sleep(LEASE_MARGIN)
    move_dns(h, "mx2.example.test")
    stop = workdir / f"stop-{scenario}-{time.time():.0f}"
    machine_stop = threading.Event()
    sender = _sender_poller(h, stop)
    machine: list[PollResult] = []
    address = h.lab.host("mx1").address
    thread = threading.Thread(target=lambda: machine.append(poll("machine", address, machine_stop)))
    thread.start()
    decision: dict[str, Any] = {}
    try:
        time.sleep(1)  # the clients are hammering before mx1 comes back
        reverse_at = time.time()
        control.fault("mx1", reverse)
        decision = (
            wait_until(
                lambda: (s := guard_status("mx1")).get("decided_at", 0) > reverse_at and s, 30
            )
            or {}
        )
        time.sleep(linger)
    finally:
        stop.touch()
        machine_stop.set()
        thread.join()
        out, _ = sender.communicate(timeout=30)
    polls = (PollResult(**json.loads(out)), *machine)
    return GuardRun(scenario, polls, reverse_at, decision, closed_while_cut)
