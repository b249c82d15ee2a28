"""Scheduled maintenance windows: which are open now (pure; the clock comes in)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from croniter import croniter

from orchestrator.config.maintenance_section import WindowConfig
from orchestrator.controller.model import MaintenanceWindow


def open_windows(windows: Iterable[WindowConfig], now: datetime) -> tuple[MaintenanceWindow, ...]:
    """Windows whose latest start (at or before `now`) plus duration is still ahead."""
    found = []
    for window in windows:
        # croniter's get_prev is strictly before its base: step one second past `now` so a
        # window that starts exactly now counts as open.
        start = croniter(window.cron, now + timedelta(seconds=1)).get_prev(datetime)
        end = start + timedelta(seconds=window.duration)
        if start <= now < end:
            found.append(MaintenanceWindow(window.host, start, end))
    return tuple(found)


def next_start(window: WindowConfig, now: datetime) -> datetime:
    return croniter(window.cron, now).get_next(datetime)
