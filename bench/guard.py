"""The old primary's client window after a failover, and its guard's reaction time.

Run as root with the lab up: `.venv/bin/python bench/guard.py [-n 5]` (deploys the pair
first; a no-op when it is deployed).
Each round (lab/mxlab/guardfaults.py): mx1 serving; mx1 frozen, crashed or cut
off; DNS moved to mx2 as the controller does it; clients hammer mx1's client ports from
`sender`'s namespace and from the machine and try to hand it messages; mx1 thawed, booted
or its link restored. Printed per scenario: connections mx1 accepted (the window: time
from the reverse action to the last accepted connection, 0 when none), connects per
second, and the time from the reverse action to the guard's first decision (p50, max).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

# The repo root, not bench/ (whose dns.py would shadow dnspython), goes first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import guardfaults
from mxlab.controlled import ControlledLab, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.state import load_lab_state

from orchestrator.deploy import runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5, help="rounds per scenario")
    parser.add_argument("--linger", type=float, default=2.0, help="s of polling after")
    args = parser.parse_args()
    lab = load_lab_state()
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.failed()}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    try:
        for scenario in sorted(guardfaults.SCENARIOS):
            runs = []
            for _ in range(args.n):
                h = ControlledLab(lab, workdir, write_config(lab, workdir))
                try:
                    runs.append(guardfaults.run(h, scenario, workdir, args.linger))
                finally:
                    h.restore()
            reactions = [r.reaction for r in runs]
            attempts = sum(p.attempts for r in runs for p in r.polls)
            seconds = sum(p.stopped_at - p.started_at for r in runs for p in r.polls)
            print(
                f"{scenario:6} n={len(runs)}: accepted {sum(len(r.accepted) for r in runs)} "
                f"of {attempts} connects ({attempts / seconds:.0f}/s per vantage), SMTP "
                f"delivered {sum(len(p.smtp_delivered) for r in runs for p in r.polls)}; "
                f"window max {max(r.window for r in runs):.2f} s; guard decided after "
                f"p50 {statistics.median(reactions):.2f} s, max {max(reactions):.2f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
