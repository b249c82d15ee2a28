"""Planned switchover and switchback on the lab: the duration of each phase, and the time
mail was not accepted anywhere.

Run as root with the lab up: `.venv/bin/python bench/switchover.py`. The owned records get
a 30 s TTL (lowered to 5 s during the switch) so a run takes about two minutes; with the
lab's usual 300 s the wait phase alone would take five minutes per direction. While the
switch runs, a watcher resolves the MX at ns1 every 100 ms and checks that the host it
names answers SMTP with a 220 banner; the time from the last check that found one to the
next that did is time mail was not accepted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab.controlled import MXCTL, ControlledLab, mx_at, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailtraffic import SteadySender, subjects_on
from mxlab.state import load_lab_state

from orchestrator.deploy import runner

OLD_TTL, LOW_TTL = 30, 5


class AcceptanceWatch(threading.Thread):
    """Time mail was not accepted, from timestamps: from the end of the last check that
    found a 220 to the start of the next one that did (a check that waits out its 1 s
    timeout is a second without acceptance, not a tenth)."""

    def __init__(self, lab: ControlledLab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.stop = threading.Event()
        self.misses = 0
        self.checks = 0
        self.not_accepted_s = 0.0

    def run(self) -> None:
        ns1 = self.lab.lab.host("ns1").address
        addresses = {h.fqdn + ".": h.address for h in self.lab.lab.hosts.values()}
        last_ok, missing_since = time.monotonic(), None
        while not self.stop.is_set():
            self.checks += 1
            began, ok = time.monotonic(), False
            try:
                target = mx_at(ns1)[0].split()[1]
                with socket.create_connection((addresses[target], 25), timeout=1) as sock:
                    sock.settimeout(1)
                    ok = sock.recv(64).startswith(b"220")
            except (OSError, IndexError, KeyError):
                pass
            if ok and missing_since is not None:
                self.not_accepted_s += began - missing_since
                missing_since = None
            elif not ok:
                self.misses += 1
                missing_since = last_ok if missing_since is None else missing_since
            if ok:
                last_ok = time.monotonic()
            time.sleep(0.1)
        if missing_since is not None:
            self.not_accepted_s += time.monotonic() - missing_since


def phases(lab: ControlledLab, kind: str) -> list[tuple[str, float]]:
    events = [
        e
        for e in lab.journal_events()
        if e.kind == "step" and e.run_id and e.run_id.startswith(kind)
    ]
    started: dict[str, datetime] = {}
    out = []
    for e in events:
        at = datetime.fromisoformat(e.at)
        if e.status == "started":
            started[e.subject] = at
        elif e.status == "done" and e.subject in started:
            out.append((e.subject, (at - started[e.subject]).total_seconds()))
    return out


def main() -> int:
    state = load_lab_state()
    if not runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY).ok:
        raise SystemExit("deploy failed")
    with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
        path = write_config(state, Path(tmp), ttl=OLD_TTL)
        path.write_text(path.read_text() + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n")
        lab = ControlledLab(state, Path(tmp), path)
        lab.restore()
        try:
            traffic = SteadySender(state, f"switch-{int(time.time())}", 10)
            watch = AcceptanceWatch(lab)
            traffic.start()
            watch.start()
            print(f"bench/switchover.py: owned records TTL {OLD_TTL} s, lowered to {LOW_TTL} s")
            for kind, args in (("switchover", ["--to", "mx2"]), ("switchback", [])):
                started = time.monotonic()
                proc = subprocess.run(
                    [MXCTL, kind, *args, "--config", str(path)], capture_output=True, text=True
                )
                took = time.monotonic() - started
                if proc.returncode != 0:
                    raise SystemExit(f"{kind} failed:\n{proc.stdout}\n{proc.stderr}")
                print(f"{kind}: {took:.1f} s in all")
                for name, seconds in phases(lab, kind):
                    print(f"  {name:18} {seconds:6.2f} s")
            watch.stop.set()
            traffic.stop.set()
            traffic.join()
            watch.join()
            accepted = set(traffic.accepted)
            time.sleep(3)
            lost = len(accepted - subjects_on(state, "mx1", traffic.prefix))
            print(
                f"mail not accepted anywhere: {watch.not_accepted_s:.1f} s, from timestamps "
                f"({watch.misses} of {watch.checks} checks missed; target 0 s)"
            )
            print(f"messages: {len(accepted)} accepted by sender, {lost} not on mx1 afterwards")
        finally:
            lab.restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
