"""Failover figures on the lab: RTO over N crash failovers, and RPO under continuous mail.

Run as root with the lab up (`mxctl lab up`): `.venv/bin/python bench/failover.py [-n 10]`.
Each round: the pair healthy with mx1 primary, the controller (`mxctl watch`) on the
machine and a witness in sender's namespace; a client hands messages to `sender`'s MTA
at --rate per second, which delivers them through the MX as any remote MTA would; mx1 is
crashed (SIGKILL of every process). RTO is the time from the crash until every
authoritative server serves the MX of mx2. Then mx1 is booted again (it stays fenced but
keeps replicating), both hosts resync, sender's queue is flushed, and every message the
sender accepted is looked for on mx2 by IMAP: RPO is the number not found.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The repo root, not bench/ (whose dns.py would shadow dnspython), goes first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import control
from mxlab.controlled import ControlledLab, mx_at, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailtraffic import SteadySender, subjects_on
from mxlab.state import load_lab_state, state_dir

from orchestrator.config import load_config
from orchestrator.deploy import runner

MX2 = ["10 mx2.example.test."]


def one_round(h: ControlledLab, index: int, rate: float) -> tuple[float, int, int]:
    h.start_witness()
    h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    prefix = f"bench-{int(time.time())}-{index}"
    sender = SteadySender(h.lab, prefix, rate)
    sender.start()
    time.sleep(2)
    crashed = time.monotonic()
    control.fault("mx1", "down")
    rto = None
    while time.monotonic() - crashed < 60:
        if all(mx_at(ns) == MX2 for ns in h.nameservers()):
            rto = time.monotonic() - crashed
            break
        time.sleep(0.02)
    time.sleep(3)
    sender.stop.set()
    sender.join()
    # Recover the old primary: it boots fenced; the controller drains its queue and resyncs
    # replication. Sender's own queue (mail deferred during the outage) is flushed now
    # rather than at its next retry, minutes later.
    control.fault("mx1", "up")
    control.exec_in("sender", ["postqueue", "-f"], capture=True)
    accepted = set(sender.accepted)
    deadline = time.monotonic() + 60
    missing = accepted - subjects_on(h.lab, "mx2", prefix)
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        control.exec_in("sender", ["postqueue", "-f"], capture=True)
        missing = accepted - subjects_on(h.lab, "mx2", prefix)
    if rto is None:
        raise SystemExit(f"round {index}: MX never moved to mx2; see {h.directory}")
    return rto, len(accepted), len(missing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    args = parser.parse_args()
    lab = load_lab_state()
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.failed()}")
    policy = load_config(state_dir() / "mxctl.toml").policy
    window = policy.interval * policy.failure_threshold
    rtos, sent, lost = [], 0, 0
    print(f"bench/failover.py: {args.rounds} crash failovers, {args.rate:g} messages/s")
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
            h = ControlledLab(lab, Path(tmp), write_config(lab, Path(tmp)))
            try:
                rto, accepted, missing = one_round(h, i, args.rate)
                if rto > window + 1:  # keep the evidence of a slow round
                    kept = Path(tempfile.mkdtemp(prefix=f"mxctl-bench-slow-{i}-"))
                    for log in ("controller.log", "witness.log"):
                        shutil.copy(Path(tmp) / log, kept / log)
                    print(f"  round {i + 1} was slow: logs kept in {kept}")
            finally:
                h.restore()
        rtos.append(rto)
        sent, lost = sent + accepted, lost + missing
        print(f"  round {i + 1}: RTO {rto:.2f} s, {accepted} accepted, {missing} not readable",
              flush=True)  # fmt: skip
    p95 = statistics.quantiles(rtos, n=20, method="inclusive")[-1] if len(rtos) > 1 else rtos[0]
    print(f"RTO (crash -> MX served by every authoritative server): "
          f"p50 {statistics.median(rtos):.2f} s, p95 {p95:.2f} s, max {max(rtos):.2f} s "
          f"(detection window {window:g} s; target p95 <= {window + 1:g} s)")  # fmt: skip
    print(
        f"RPO: {lost} of {sent} accepted messages not readable on the new primary after "
        "the old one was recovered and resynced (target 0)"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
