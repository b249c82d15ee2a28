"""One probe round: every service probe and the host state of every mail host, and the
canary, all at once. Each probe keeps its own timeout, so a round lasts as long as its
slowest probe and a hung host delays nobody else's results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.clock import Clock
from orchestrator.probes.canary import canary_round
from orchestrator.probes.result import ProbeResult
from orchestrator.probes.services import SERVICE_PROBES, probe_service
from orchestrator.probes.settings import ProbeSettings
from orchestrator.probes.sshstate import host_state


@dataclass(frozen=True)
class ProbeRound:
    started: datetime
    duration: float
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[ProbeResult]:
        return [r for r in self.results if not r.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "duration_ms": round(self.duration * 1000, 1),
            "ok": self.ok,
            "results": [r.to_json() for r in self.results],
        }


async def probe_round(
    settings: ProbeSettings,
    clock: Clock,
    *,
    with_host_state: bool = True,
    with_canary: bool = True,
) -> ProbeRound:
    started, began = clock.now(), clock.monotonic()
    jobs = [
        probe_service(name, settings, host, clock)
        for host in settings.hosts
        for name in SERVICE_PROBES
    ]
    if with_host_state:
        jobs += [host_state(settings, host, clock) for host in settings.hosts if host.ssh]
    run_canary = with_canary and settings.canary is not None
    singles, canary = await asyncio.gather(
        asyncio.gather(*jobs),
        canary_round(settings, clock) if run_canary else _nothing(),
    )
    return ProbeRound(started, clock.monotonic() - began, (*singles, *canary))


async def _nothing() -> list[ProbeResult]:
    return []
