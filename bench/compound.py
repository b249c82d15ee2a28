"""Compound-fault figures on the lab (issue 11): failover time with the witness down, and
the time from a replication cut to the alert at the webhook.

Run as root with the lab up (`mxctl lab up`): `.venv/bin/python bench/compound.py [-n 5]`.
Each round starts the controller (`mxctl watch`) on the machine with a webhook receiver on
loopback, and a witness in sender's namespace.
- witness down: the witness process is stopped; once the controller shows it abstaining,
  mx1 is crashed; the figure is crash -> every authoritative server serves the MX of mx2.
  The controller and the standby's own view are the remaining majority.
- replication cut: mx1 and mx2 are partitioned from each other (both still serve); the
  figure is cut -> the `replication-broken` alert arriving at the webhook.
"""

from __future__ import annotations

import argparse
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
from mxlab.state import LabState, load_lab_state
from mxlab.webhooks import WebhookReceiver

from orchestrator.deploy import runner

MX2 = ["10 mx2.example.test."]


def controlled(lab: LabState, tmp: Path, hooks: WebhookReceiver) -> ControlledLab:
    config = write_config(lab, tmp)
    config.write_text(config.read_text() + f'\n[notify]\nwebhooks = ["{hooks.url}"]\n')
    h = ControlledLab(lab, tmp, config)
    h.start_witness()
    h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    return h


def witness_down(h: ControlledLab) -> float:
    h.stop("witness")
    h.wait_status(lambda s: any(r["observer"] == "sender" and r["note"]
                                for r in s["observers"]), 20, "the witness to abstain")  # fmt: skip
    crashed = time.monotonic()
    control.fault("mx1", "kill")
    while time.monotonic() - crashed < 60:
        if all(mx_at(ns) == MX2 for ns in h.nameservers()):
            return time.monotonic() - crashed
        time.sleep(0.02)
    raise SystemExit(f"MX never moved with the witness down; see {h.directory}")


def replication_cut(h: ControlledLab, hooks: WebhookReceiver) -> float:
    cut = time.monotonic()
    control.fault("mx1", "partition", "mx2")
    while time.monotonic() - cut < 60:
        opened = hooks.first("replication-broken", "open", 0, since=cut)
        if opened is not None:
            return opened - cut
        time.sleep(0.05)
    raise SystemExit(f"no replication-broken alert within 60 s; see {h.directory}")


def summary(name: str, figures: list[float]) -> str:
    return (f"{name}: p50 {statistics.median(figures):.2f} s, max {max(figures):.2f} s "
            f"over {len(figures)} rounds")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=5)
    args = parser.parse_args()
    lab = load_lab_state()
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.failed()}")
    rto, alert = [], []
    print(f"bench/compound.py: {args.rounds} rounds of each fault")
    for i in range(args.rounds):
        for kind in ("witness-down", "replication-cut"):
            hooks = WebhookReceiver()
            with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
                h = controlled(lab, Path(tmp), hooks)
                try:
                    if kind == "witness-down":
                        rto.append(witness_down(h))
                        figure = rto[-1]
                    else:
                        alert.append(replication_cut(h, hooks))
                        figure = alert[-1]
                finally:
                    h.restore()
                    hooks.close()
            print(f"  round {i + 1} {kind}: {figure:.2f} s", flush=True)
    print(summary("failover with the witness down (crash -> MX at every nameserver)", rto))
    print(summary("replication cut -> replication-broken alert at the webhook", alert))
    return 0


if __name__ == "__main__":
    sys.exit(main())
