"""The controller's view of the backups: refreshed in the background while `mxctl watch`
runs, cached in the state directory (for `mxctl status`), exported on /metrics, and an
alert (journal + webhooks) when the last good backup becomes older than the policy or a
drill fails."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator.backup import health, hosts
from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.journal import Journal

log = logging.getLogger(__name__)
REFRESH_S = 60.0


def cache_path(state_dir: Path) -> Path:
    return state_dir / "backup.json"


def write_cache(state_dir: Path, states: dict[str, dict[str, Any]], clock: Clock) -> None:
    path = cache_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"read_at": clock.now().isoformat(), "hosts": states}, indent=1))
    tmp.replace(path)


def cached_health(state_dir: Path, clock: Clock = SYSTEM_CLOCK) -> health.BackupHealth | None:
    """From the last refresh (the controller's, or an `mxctl backup` command's)."""
    try:
        data = json.loads(cache_path(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return health.assess(data.get("hosts", {}), clock.now())


class BackupWatch:
    def __init__(
        self,
        config: MxctlConfig,
        journal: Journal,
        clock: Clock = SYSTEM_CLOCK,
        read: Callable[[MxctlConfig], dict[str, dict[str, Any]]] = hosts.read_states,
    ) -> None:
        self.config, self.journal, self.clock, self._read = config, journal, clock, read
        self.latest: health.BackupHealth | None = None
        self._alerted: set[str] = set()

    def refresh(self) -> health.BackupHealth:
        states = self._read(self.config)
        write_cache(self.config.pair.state_dir, states, self.clock)
        current = health.assess(states, self.clock.now())
        self._alert_on_change(current)
        self.latest = current
        return current

    def _alert_on_change(self, h: health.BackupHealth) -> None:
        problems = {}
        if h.stale:
            problems["stale"] = h.why
        if h.drill_result == "failed":
            failed = ", ".join(h.drill_failed_mailboxes) or "the manifest"
            problems[f"drill:{h.drill_at}"] = f"restore drill failed: {failed}"
        for key, reason in problems.items():
            if key in self._alerted:
                continue
            self.journal.record(
                self.clock.now(), "alert", "backup", key.split(":")[0], reason, h.as_dict()
            )
            self._notify(reason, h)
        self._alerted = set(problems)

    def _notify(self, reason: str, h: health.BackupHealth) -> None:
        try:
            notify = self.config.notify
        except Exception:  # no [notify] section: the journal and /metrics carry the alert
            return
        for url in notify.webhooks:
            try:
                payload = {"event": "backup_alert", "reason": reason, **h.as_dict()}
                httpx.post(url, json=payload, timeout=notify.timeout).raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("backup alert webhook %s failed: %s", url, exc)

    def run(self, stop: threading.Event, every: float = REFRESH_S) -> None:
        while not stop.is_set():
            try:
                h = self.refresh()
                log.info("backups: %s", h.why)
            except Exception:  # the controller must never die of a backup check
                log.exception("backup state refresh failed")
            stop.wait(every)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), daemon=True, name="backups")
        thread.start()
        return thread


class BackupCollector(Collector):
    """/metrics gauges from the watch's latest view (no SSH at scrape time)."""

    def __init__(self, watch: BackupWatch) -> None:
        self.watch = watch

    def collect(self) -> Iterator[GaugeMetricFamily]:
        h = self.watch.latest
        if h is None or not h.configured:
            return
        if h.age_s is not None:
            yield GaugeMetricFamily(
                "mxctl_backup_last_good_age_seconds", "age of the last good backup", value=h.age_s
            )
        yield GaugeMetricFamily(
            "mxctl_backup_max_age_seconds", "policy: alert above this age", value=h.max_age_s or 0
        )
        yield GaugeMetricFamily(
            "mxctl_backup_stale",
            "1 when the last good backup is older than the policy",
            value=1 if h.stale else 0,
        )
        if h.drill_result is not None:
            yield GaugeMetricFamily(
                "mxctl_backup_drill_passed",
                "1 when the last restore drill passed",
                value=1 if h.drill_result == "passed" else 0,
            )
