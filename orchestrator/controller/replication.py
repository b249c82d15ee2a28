"""How far behind the standby is: canary rounds in the background, a lag figure for decide().

The canary (a message through the MX, timed on both hosts) runs every `canary_every`
seconds in its own thread, so a slow round never delays failure detection. The lag it
yields is what the promotion gate needs: how much recent mail the standby may lack.
- the last canary replicated: its measured replication latency;
- the standby did not get it in time: the time since the last canary that did replicate
  (it grows while replication stays broken);
- the primary did not even take it (the primary is failing): the last figure stands, since
  the question is how far behind the standby was when the primary stopped taking mail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from orchestrator.clock import Clock
from orchestrator.probes.canary import canary_round
from orchestrator.probes.result import ProbeResult
from orchestrator.probes.settings import CanarySettings, ProbeSettings

log = logging.getLogger(__name__)


class ReplicationLag:
    """Pure bookkeeping over canary results (tested from tables)."""

    def __init__(self, started: datetime) -> None:
        self.started = started
        self.last_replicated: datetime | None = None
        self.lag_s: float | None = None
        # Why replication looks broken (None: the last canary replicated, or none ran).
        self.broken: str | None = None

    def update(self, results: Sequence[ProbeResult], now: datetime) -> float | None:
        by_name = {r.probe: r for r in results}
        delivery, replicated = by_name.get("canary-delivery"), by_name.get("canary-replication")
        if delivery is None or not delivery.ok:
            return self.lag_s  # the primary is not taking mail: the last figure stands
        if replicated is not None and replicated.ok:
            self.last_replicated = now
            self.lag_s = replicated.latency
            self.broken = None
        else:
            since = self.last_replicated or self.started
            self.lag_s = (now - since).total_seconds()
            # One canary is enough to say so: the alert must come within a canary period.
            why = replicated.summary() if replicated is not None else "no replication probe"
            self.broken = f"the canary reached the primary but not the standby ({why})"
        return self.lag_s


class CanaryThread(threading.Thread):
    def __init__(
        self,
        settings_now: Callable[[], ProbeSettings],
        canary: CanarySettings,
        every: float,
        clock: Clock,
    ) -> None:
        super().__init__(daemon=True, name="canary")
        self.settings_now, self.canary, self.every, self.clock = settings_now, canary, every, clock
        self.lag = ReplicationLag(clock.now())
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def lag_s(self) -> float | None:
        with self._lock:
            return self.lag.lag_s

    def broken(self) -> str | None:
        with self._lock:
            return self.lag.broken

    def run(self) -> None:
        while not self.stop.is_set():
            started = self.clock.monotonic()
            try:
                settings = replace(self.settings_now(), canary=self.canary)
                results = asyncio.run(canary_round(settings, self.clock))
                with self._lock:
                    lag = self.lag.update(results, self.clock.now())
                log.debug("canary: %s; replication lag %s", [r.summary() for r in results], lag)
            except Exception:  # a canary problem must never stop the controller
                log.exception("canary round failed")
            self.stop.wait(max(0.0, self.every - (self.clock.monotonic() - started)))
