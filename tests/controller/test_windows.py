"""Maintenance windows from cron + duration (a table; no clock, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.config.maintenance_section import WindowConfig
from orchestrator.controller.windows import next_start, open_windows

SUNDAY_3AM = WindowConfig("patching", "mx1.example.test", "0 3 * * sun", 3600)


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (datetime(2026, 11, 29, 2, 59, 59, tzinfo=UTC), False),  # Sunday, just before
        (datetime(2026, 11, 29, 3, 0, 0, tzinfo=UTC), True),  # exactly at the start
        (datetime(2026, 11, 29, 3, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 29, 4, 0, 0, tzinfo=UTC), False),  # the end is exclusive
        (datetime(2026, 11, 30, 3, 30, 0, tzinfo=UTC), False),  # Monday
    ],
)
def test_window_open_exactly_within_start_and_duration(now: datetime, is_open: bool) -> None:
    windows = open_windows([SUNDAY_3AM], now)
    assert bool(windows) is is_open
    if is_open:
        assert windows[0].host == "mx1.example.test"
        assert windows[0].covers("mx1.example.test", now)
        assert not windows[0].covers("mx2.example.test", now)


def test_next_start_is_the_following_sunday() -> None:
    after = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
    assert next_start(SUNDAY_3AM, after) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
