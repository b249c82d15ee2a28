"""Many service probes at once, spread over worker processes.

One event loop runs on one core, and a probe's CPU goes mostly into its TLS handshake;
with hundreds of targets per cycle, the probes are cut into one shard per worker process
and each shard runs concurrently in its worker's own loop. The pool lives as long as its
owner (the controller), so a cycle pays no process start-up. Workers use the system clock.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.probes.result import ProbeResult
from orchestrator.probes.services import probe_service
from orchestrator.probes.settings import MailHostTarget, ProbeSettings


@dataclass(frozen=True)
class ProbeJob:
    probe: str  # smtp | submission | imaps | imap-starttls
    settings: ProbeSettings
    host: MailHostTarget


async def run_jobs(jobs: list[ProbeJob]) -> list[ProbeResult]:
    """Every job concurrently in the current loop, results in job order."""
    return list(
        await asyncio.gather(
            *(probe_service(j.probe, j.settings, j.host, SYSTEM_CLOCK) for j in jobs)
        )
    )


def _run_shard(jobs: list[ProbeJob]) -> list[ProbeResult]:
    return asyncio.run(run_jobs(jobs))


class ProbePool:
    """`workers` processes (default: one per CPU) that run shards of a probe cycle."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        # forkserver: workers never inherit a running event loop or the parent's threads.
        context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(self.workers, mp_context=context)

    def warm_up(self) -> None:
        list(self._pool.map(_run_shard, [[] for _ in range(self.workers)]))

    async def run(self, jobs: list[ProbeJob]) -> list[ProbeResult]:
        if self.workers == 1 or len(jobs) < 2 * self.workers:
            return await run_jobs(jobs)  # not worth a round trip to the workers
        shards = [jobs[i :: self.workers] for i in range(self.workers)]
        loop = asyncio.get_running_loop()
        done = await asyncio.gather(
            *(loop.run_in_executor(self._pool, _run_shard, shard) for shard in shards)
        )
        results: list[ProbeResult | None] = [None] * len(jobs)
        for index, shard_results in enumerate(done):
            results[index :: self.workers] = shard_results
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProbePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
