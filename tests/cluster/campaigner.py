"""A controller's election loop as its own process, for the kill tests: every `interval`
it ticks the real Elector and appends one JSON line (monotonic time, verdict) to a file.

python -m tests.cluster.campaigner ENDPOINT CLUSTER NAME TTL MARGIN INTERVAL OUT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from orchestrator.cluster.etcd import EtcdClient
from orchestrator.cluster.leadership import ClusterKeys, Elector


def main(argv: list[str]) -> None:
    endpoint, cluster, name, ttl, margin, interval, out = argv
    elector = Elector(EtcdClient([endpoint]), ClusterKeys(cluster), name, int(ttl), float(margin))
    with Path(out).open("a") as log:
        while True:
            elector.tick()
            verdict = elector.verdict()
            line = {"t": time.monotonic(), "name": name, "may_act": verdict.may_act,
                    "term": verdict.term, "role": verdict.role.value}  # fmt: skip
            log.write(json.dumps(line) + "\n")
            log.flush()
            time.sleep(float(interval))


if __name__ == "__main__":
    main(sys.argv[1:])
