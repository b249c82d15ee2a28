"""Probe-cycle time against N targets, and CPU time per probe.

The targets are SYNTHETIC: SMTP and IMAPS listeners on 127.0.0.1 (tests/probes/mailservers:
real TCP and TLS 1.3 with an ECDSA P-256 certificate from a throw-away CA), one listening
port per target, served by separate processes (--servers, default 2: the listeners'
handshakes cost as much CPU as the probes' own, and one process would be the bottleneck).
Half the targets get the SMTP probe (banner, EHLO, STARTTLS, certificate, EHLO, QUIT),
half the IMAPS probe (TLS, certificate, greeting, then LOGIN, SELECT, LOGOUT pipelined):
the two probes the controller runs per host each cycle.

The listeners share this machine's cores with the probes, and their TLS handshakes cost
about as much CPU as the probes' own, so the cycle times here are pessimistic: on a real
controller the targets' CPU is the targets' problem. "CPU/probe" counts only the probing
processes (the parent and its probe workers), which is what a controller pays.

Run: `.venv/bin/python bench/probes.py [--sizes 10,100,1000] [--repeat 3]`.
Target (issue 5): 1,000 targets in one cycle under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# Run as a script, bench/ is first on sys.path, and bench/dns.py would shadow dnspython.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab.standins.certs import make_authority, server_context
from mxlab.standins.mailservers import PASSWORD, USER, Behaviour, serve

from orchestrator.config.secrets import Secret
from orchestrator.probes.fanout import ProbeJob, ProbePool
from orchestrator.probes.settings import (
    MailHostTarget,
    Ports,
    ProbeSettings,
    ProbeUser,
    Timeouts,
)

NAME = "mx.bench.test"


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(kinds: list[str], directory: str, ready: Any, index: int) -> None:
    """Server process: one listener per target; reports the ports, runs until terminated."""
    _raise_fd_limit()
    context = server_context(_AUTHORITY, (NAME,), Path(directory))

    async def main() -> None:
        managers, ports = [], []
        for kind in kinds:
            banner = "220 mx.bench.test ESMTP" if kind == "smtp" else "* OK bench ready."
            manager = serve(kind, Behaviour(tls=context, banner=banner))
            ports.append(await manager.__aenter__())
            managers.append(manager)
        ready.put((index, ports))
        await asyncio.Event().wait()

    asyncio.run(main())


def _jobs(ca: str, kinds: list[str], ports: list[int], timeout: float) -> list[ProbeJob]:
    base = ProbeSettings(
        hosts=(),
        client_name=NAME,
        probe_user=ProbeUser(USER, Secret(PASSWORD)),
        helo_name="probe.bench.test",
        ca_file=ca,
        timeouts=Timeouts(smtp=timeout, submission=timeout, imap=timeout),
    )
    jobs = []
    for i, (kind, port) in enumerate(zip(kinds, ports, strict=True)):
        settings = replace(base, ports=Ports(smtp=port, imaps=port))
        host = MailHostTarget(f"t{i}", NAME, "127.0.0.1", "primary")
        jobs.append(ProbeJob("smtp" if kind == "smtp" else "imaps", settings, host))
    return jobs


def _cpu_of_probing_processes() -> float:
    """CPU seconds of this process and its finished-or-running probe workers."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own + children.ru_utime + children.ru_stime
    for pid in _worker_pids():
        total += _proc_cpu(pid)
    return total


_WORKERS: list[int] = []


def _worker_pids() -> list[int]:
    return list(_WORKERS)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _measure(pool: ProbePool, jobs: list[ProbeJob], repeat: int) -> tuple[list[float], float, int]:
    walls, cpus, failures = [], [], 0
    for _ in range(repeat):
        cpu0, wall0 = _cpu_of_probing_processes(), time.perf_counter()
        results = asyncio.run(pool.run(jobs))
        walls.append(time.perf_counter() - wall0)
        cpus.append(_cpu_of_probing_processes() - cpu0)
        failures += sum(not r.ok for r in results)
    return walls, min(cpus), failures


_AUTHORITY = make_authority()


def run(size: int, repeat: int, timeout: float, pools: dict[int, ProbePool], servers: int) -> None:
    kinds = ["smtp" if i % 2 == 0 else "imaps" for i in range(size)]
    fork = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as directory:
        ca = _AUTHORITY.write(Path(directory) / "ca.pem")
        ready: Any = fork.Queue()
        procs = [
            fork.Process(target=_serve, args=(kinds[i::servers], directory, ready, i))
            for i in range(servers)
        ]
        for proc in procs:
            proc.start()
        try:
            shards = dict(ready.get(timeout=300) for _ in procs)
            ports = [0] * size
            for index, shard_ports in shards.items():
                ports[index::servers] = shard_ports
            jobs = _jobs(ca, kinds, ports, timeout)
            for workers, pool in pools.items():
                served0 = sum(_proc_cpu(p.pid) for p in procs if p.pid)
                walls, cpu, failures = _measure(pool, jobs, repeat)
                served = sum(_proc_cpu(p.pid) for p in procs if p.pid) - served0
                print(
                    f"N={size:5d}  workers={workers}  cycle {min(walls) * 1000:7.1f} ms "
                    f"(best of {repeat}; median {statistics.median(walls) * 1000:.1f} ms)  "
                    f"CPU/probe {cpu / size * 1000:.2f} ms "
                    f"(listeners: {served / (size * repeat) * 1000:.2f} ms)  "
                    f"failed {failures}/{size * repeat}",
                    flush=True,
                )
        finally:
            for proc in procs:
                proc.terminate()
                proc.join()


def main() -> int:
    parser = argparse.ArgumentParser(description="probe-cycle time against N targets")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--workers", default="1,2", help="probe worker processes to compare")
    parser.add_argument("--servers", type=int, default=2, help="synthetic listener processes")
    args = parser.parse_args()
    _raise_fd_limit()
    print(
        f"probe cycles against SYNTHETIC loopback listeners ({args.servers} server "
        f"processes on the same machine); {os.cpu_count()} CPUs"
    )
    pools = {int(w): ProbePool(int(w)) for w in args.workers.split(",")}
    try:
        for pool in pools.values():
            pool.warm_up()
            _WORKERS.extend(p.pid for p in pool._pool._processes.values())
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, args.repeat, args.timeout, pools, args.servers)
    finally:
        for pool in pools.values():
            pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
