"""Controller cluster: how long after the leader is SIGKILLed another controller may act.

`.venv/bin/python bench/cluster_takeover.py [-n 10] [--ttl 2] [--interval 0.25] [--members 1]`
No lab needed: a real etcd (1 or 3 members, loopback, temporary directory) and three
controller election loops as separate processes (lab/mxlab/campaigners.py). Each round
kills the current leader, waits until another may act, and starts the killed controller
again. Printed: takeover p50 / p95 / max, next to the bound the design promises (lease
TTL + one interval, plus etcd's 500 ms lease-expiry sweep), and whether any round saw two
controllers act in one term.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab.campaigners import Campaigners
from mxlab.etcd_local import EtcdCluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10, help="leader kills")
    parser.add_argument("--ttl", type=int, default=2, help="lease TTL, s (etcd's minimum: 2)")
    parser.add_argument("--interval", type=float, default=0.25, help="election tick, s")
    parser.add_argument("--margin", type=float, default=0.5, help="safety margin, s")
    parser.add_argument("--members", type=int, default=1, choices=(1, 3), help="etcd members")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mxctl-bench-etcd-") as tmp:
        etcd = EtcdCluster(Path(tmp) / "etcd", args.members)
        group = Campaigners(
            Path(tmp), etcd.endpoints[0], "bench", args.ttl, args.margin, args.interval
        )
        times, overlaps = [], 0
        try:
            etcd.start_all()
            for name in ("ctl1", "ctl2", "ctl3"):
                group.start(name)
            for i in range(args.n):
                took = group.takeover()
                times.append(took.seconds)
                overlaps += len(took.overlap)
                print(
                    f"round {i + 1}: {took.old_leader} killed (term {took.old_term}), "
                    f"{took.new_leader} leads term {took.new_term} after {took.seconds:.2f} s"
                )
                group.start(took.old_leader)
        finally:
            group.close()
            etcd.close()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    bound = args.ttl + args.interval
    print(
        f"takeover after leader SIGKILL ({args.n} rounds, {args.members} etcd member(s), "
        f"TTL {args.ttl} s, interval {args.interval} s): p50 {statistics.median(times):.2f} s, "
        f"p95 {p95:.2f} s, max {times[-1]:.2f} s; bound TTL + interval = {bound:.2f} s; "
        f"controllers acting in a dead leader's term: {overlaps}"
    )


if __name__ == "__main__":
    main()
