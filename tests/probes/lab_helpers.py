"""Helpers for the probe tests against the lab: run probes, inject and undo faults."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from mxlab import control
from mxlab.controlled import converge_mail_pair
from mxlab.state import load_lab_state

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.deploy.hostfiles import REPLICATION_RESYNC
from orchestrator.probes.result import ErrorClass, ProbeResult
from orchestrator.probes.services import SERVICE_PROBES, probe_service
from orchestrator.probes.settings import ProbeSettings
from orchestrator.probes.sshstate import host_state

REPO = Path(__file__).resolve().parents[2]
# Detection must happen within one probe timeout; a little slack for the event loop.
SLACK = 0.25


def in_host(host: str, *argv: str) -> str:
    """Run a command inside a lab host; it must succeed."""
    proc = control.exec_in(host, list(argv), capture=True)
    assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.stderr.strip()}"
    return proc.stdout


def probe(settings: ProbeSettings, host: str, *names: str) -> dict[str, ProbeResult]:
    """The named probes (service probes or host-state) against one host, concurrently."""
    target = settings.host(host)

    async def run() -> list[ProbeResult]:
        jobs = [
            host_state(settings, target, SYSTEM_CLOCK)
            if name == "host-state"
            else probe_service(name, settings, target, SYSTEM_CLOCK)
            for name in names
        ]
        return await asyncio.gather(*jobs)

    return {r.probe: r for r in asyncio.run(run())}


def wait_serving(settings: ProbeSettings, host: str, within: float = 60.0) -> None:
    """Until every service probe and the host state of `host` pass (after a fault).

    A replicator that failed to reach its peer during a fault waits 300 s before trying
    again; rather than wait, converge the pair as the other lab tests do, once: stuck
    sessions ended, one host resyncing per round. (Asking both hosts to resync every half
    second, as this did, is what locks Dovecot 2.3's replication up: seen in a full run,
    mx2 still "replication failing" after 60 s.)"""
    deadline = time.monotonic() + within
    converged = False
    while True:
        results = probe(settings, host, *SERVICE_PROBES, "host-state")
        failed = [r.summary() for r in results.values() if not r.ok]
        if not failed:
            return
        if "replication failing" in results["host-state"].message and not converged:
            lab = load_lab_state()
            converge_mail_pair([lab.ssh_target(h) for h in ("mx1", "mx2")])
            converged = True
            deadline = max(deadline, time.monotonic() + within)
        if time.monotonic() > deadline:
            raise AssertionError(f"{host} not serving again after {within:g} s: {failed}")
        time.sleep(0.5)


def resync_replication() -> None:
    """After a peer was unreachable, Dovecot's replicator waits 300 s before retrying;
    ask mx1 to replicate every user now (a two-way sync: one host is enough, and both at
    once is what locks 2.3 up), so the lab is left converged."""
    control.exec_in("mx1", ["sh", "-c", REPLICATION_RESYNC], capture=True)


def probe_from(
    netns: str, host: str, *names: str, wrong_password: bool, timeout: float
) -> list[ProbeResult]:
    """Run probes from another lab host's network namespace (tests/probes/netns_probe.py)."""
    argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.probes.netns_probe"]
    argv += [host, *names, "--timeout", str(timeout)]
    if wrong_password:
        argv.append("--wrong-password")
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = []
    for line in proc.stdout.splitlines():
        raw = json.loads(line)
        results.append(
            ProbeResult(
                probe=raw["probe"],
                target=raw["target"],
                ok=raw["ok"],
                latency=raw["latency_ms"] / 1000,
                error=ErrorClass(raw["error"]) if raw["error"] else None,
                step=raw["step"],
                message=raw["message"],
                details=raw["details"],
            )
        )
    return results
