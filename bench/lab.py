"""Lab figures: first build (empty cache), `lab up` with a cached image, `lab down`, memory.

Run as root: `.venv/bin/python bench/lab.py [--skip-first-build]`. The first-build figure
uses a fresh, temporary cache directory (so it downloads the base image from the Debian
mirror this machine's apt uses) and needs the lab to be down; the script restores the lab
to the state it found (up or down) when it finishes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The repo root, not bench/ (whose dns.py would shadow dnspython), goes first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import lab, nspawn
from mxlab.topology import HOSTS


def _timed(step: str, func: object) -> float:
    started = time.monotonic()
    func()  # type: ignore[operator]
    took = time.monotonic() - started
    print(f"  {step}: {took:.2f} s", flush=True)
    return took


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_per_host() -> dict[str, float]:
    """Proportional set size (MiB) of every process of each host, kernel memory excluded."""
    return {h.name: sum(_pss_kib(p) for p in nspawn.host_pids(h.name)) / 1024 for h in HOSTS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-first-build", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="cached up/down rounds")
    args = parser.parse_args()
    was_up = lab.is_up()
    print("bench/lab.py: lab build and lifecycle on this machine")
    if was_up:
        _timed("lab down (lab found up)", lab.down)
    if not args.skip_first_build:
        cache = tempfile.mkdtemp(prefix="mxctl-bench-cache-")
        os.environ["MXCTL_LAB_CACHE"] = cache
        try:
            first = _timed("first build + up (empty cache)", lab.up)
            _timed("lab down", lab.down)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            del os.environ["MXCTL_LAB_CACHE"]
        print(f"first build: {first:.1f} s (target < 240 s)")
    lab.up()  # warm the default cache if needed
    lab.down()
    ups, downs = [], []
    for i in range(args.rounds):
        ups.append(_timed(f"round {i + 1}: lab up (cached)", lab.up))
        if i == args.rounds - 1:
            time.sleep(3)  # let daemons settle before measuring memory
            memory = memory_per_host()
        downs.append(_timed(f"round {i + 1}: lab down", lab.down))
    print(f"lab up with a cached image: median {statistics.median(ups):.2f} s (target < 10 s)")
    print(f"lab down: median {statistics.median(downs):.2f} s")
    for name, mib in memory.items():
        print(f"memory {name}: {mib:.1f} MiB (PSS of all its processes)")
    print(f"memory per host: mean {statistics.mean(memory.values()):.1f} MiB")
    if was_up:
        lab.up()
    return 0


if __name__ == "__main__":
    sys.exit(main())
