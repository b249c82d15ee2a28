"""Where a failover drill's result goes: the state directory (`mxctl status`, /metrics),
the journal (evidence), and on failure an alert (journal + the `[notify]` webhooks)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.journal import Journal
from orchestrator.drills.verdict import DrillResult

log = logging.getLogger(__name__)


def result_path(state_dir: Path) -> Path:
    return state_dir / "failover-drill.json"


def last_result(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(result_path(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def record(config: MxctlConfig, journal: Journal, result: DrillResult, clock: Clock) -> None:
    path = result_path(config.pair.state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.as_dict(), indent=1))
    tmp.replace(path)
    journal.record(clock.now(), "drill", "failover", result.result, result.why, result.as_dict())
    if result.result == "passed":
        return
    journal.record(clock.now(), "alert", "failover-drill", "failed", result.why)
    try:
        notify = config.notify
    except Exception:  # no [notify] section: the journal and /metrics carry the alert
        return
    for url in notify.webhooks:
        try:
            payload = {"event": "failover_drill_failed", **result.as_dict()}
            httpx.post(url, json=payload, timeout=notify.timeout).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("drill alert webhook %s failed: %s", url, exc)


class DrillCollector(Collector):
    """/metrics gauges of the last failover drill (read from its file at scrape time)."""

    def __init__(self, state_dir: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.state_dir, self.clock = state_dir, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = last_result(self.state_dir)
        if last is None:
            return
        age = (self.clock.now() - datetime.fromisoformat(last["at"])).total_seconds()
        gauges = {
            "passed": ("1 when the last failover drill passed", last["result"] == "passed"),
            "age_seconds": ("age of the last failover drill", age),
            "not_accepted_seconds": ("seconds mail was not accepted", last["not_accepted_s"]),
            "convergence_seconds": ("mailbox convergence time", last["convergence_s"]),
            "messages_lost": ("accepted messages never delivered", last["messages_lost"]),
        }
        for name, (text, value) in gauges.items():
            yield GaugeMetricFamily(f"mxctl_failover_drill_{name}", text, value=float(value))
