"""Controllers' election loops as separate processes, for the leader-kill test and bench.

Each process ticks the real `Elector` every `interval` and appends one JSON line
(monotonic time, name, verdict) to its own file; monotonic time is shared by every
process on the machine, so lines from different processes compare. `takeover()` SIGKILLs
the current leader and returns how long it took until another controller could act.

python -m mxlab.campaigners ENDPOINT CLUSTER NAME TTL MARGIN INTERVAL OUT
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.cluster.etcd import EtcdClient
from orchestrator.cluster.leadership import ClusterKeys, Elector


@dataclass(frozen=True)
class Takeover:
    old_leader: str
    old_term: int
    new_leader: str
    new_term: int
    seconds: float  # from the SIGKILL to the first line of a new leader that may act
    overlap: list[dict[str, Any]]  # lines of another controller acting in the old term


@dataclass
class Campaigners:
    folder: Path
    endpoint: str
    cluster: str
    ttl: int
    margin: float
    interval: float
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        settings = [self.ttl, self.margin, self.interval, self._out(name)]
        argv = [sys.executable, "-m", "mxlab.campaigners", self.endpoint, self.cluster, name]
        argv += [str(s) for s in settings]
        self.procs[name] = subprocess.Popen(argv)

    def _out(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def lines(self, name: str) -> list[dict[str, Any]]:
        path = self._out(name)
        if not path.exists():
            return []
        text = path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def leader(self, timeout: float = 20.0) -> tuple[str, int]:
        """The one controller acting now (its latest line may act), with its term."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = {n: self.lines(n)[-1] for n in self.procs if self.lines(n)}
            acting = [(n, int(x["term"])) for n, x in latest.items() if x["may_act"]]
            if len(acting) == 1:
                return acting[0]
            time.sleep(0.1)
        raise AssertionError(f"no single leader among {sorted(self.procs)} in {timeout} s")

    def takeover(self, timeout: float = 30.0) -> Takeover:
        old, old_term = self.leader()
        killed_at = time.monotonic()
        self.kill(old)
        deadline = killed_at + timeout
        while time.monotonic() < deadline:
            after = [
                x for n in self.procs for x in self.lines(n)
                if n != old and x["may_act"] and x["t"] > killed_at
            ]  # fmt: skip
            if after:
                first = min(after, key=lambda x: float(x["t"]))
                overlap = [
                    x for n in self.procs if n != old for x in self.lines(n)
                    if x["may_act"] and int(x["term"]) == old_term
                ]  # fmt: skip
                return Takeover(old, old_term, str(first["name"]), int(first["term"]),
                                float(first["t"]) - killed_at, overlap)  # fmt: skip
            time.sleep(0.05)
        raise AssertionError(f"nobody took over from {old} within {timeout} s")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


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
