"""The controller's view of the backups: age against policy, drill result, alerts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from orchestrator.backup import health, watch
from orchestrator.controller.journal import Journal
from tests.fakes import FakeClock

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def good(minutes_ago: float) -> dict[str, Any]:
    return {"time": at(minutes_ago), "ok": True, "snapshot": "abcd1234"}


@pytest.mark.parametrize(
    ("states", "stale", "host", "why"),
    [
        ({"mx1": {}, "mx2": {}}, True, None, "no good backup yet"),
        ({"mx1": {"last_good": good(30), "max_age_s": 8100}, "mx2": {}}, False, "mx1",
         "30 min ago on mx1"),
        ({"mx1": {"last_good": good(200), "max_age_s": 8100}}, True, "mx1", "policy 2.2 h"),
        # after a failover the new primary's backups are the newest
        ({"mx1": {"last_good": good(300)}, "mx2": {"last_good": good(10)}}, False, "mx2",
         "10 min ago on mx2"),
        ({"mx1": {"last_good": good(30),
                  "last_attempt": {"time": at(1), "ok": False, "error": "sftp: refused"}}},
         False, "mx1", "last attempt failed: sftp: refused"),
        ({"mx1": {"last_good": good(30)}, "mx2": {"error": "mx2: unreachable"}}, False, "mx1",
         "state unreadable on mx2"),
    ],
)  # fmt: skip
def test_assess(states: dict[str, Any], stale: bool, host: str | None, why: str) -> None:
    h = health.assess(states, NOW)
    assert h.stale is stale and h.last_good_host == host and why in h.why, h.why


def test_no_agent_on_either_host_is_not_configured_not_stale() -> None:
    h = health.assess({"mx1": {"installed": False}, "mx2": {"installed": False}}, NOW)
    assert not h.configured and not h.stale and "not configured" in h.why
    half = health.assess({"mx1": {"installed": False}, "mx2": {}}, NOW)
    assert half.configured and half.stale


class Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_stale_backup_and_failed_drill_alert_once_each(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    config = SimpleNamespace(
        pair=SimpleNamespace(state_dir=tmp_path),
        notify=SimpleNamespace(webhooks=(url,), timeout=2.0),
    )
    states: dict[str, dict[str, Any]] = {"mx1": {"last_good": good(0), "max_age_s": 3600}}
    clock = FakeClock(NOW)
    journal = Journal(tmp_path / "journal.db")
    w = watch.BackupWatch(config, journal, clock, read=lambda _: states)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(watch.BackupCollector(w))
    try:
        assert not w.refresh().stale
        clock.advance(2 * 3600)
        assert w.refresh().stale
        w.refresh()  # still stale: no second alert
        failed = ["alice@example.test/INBOX"]
        states["mx1"]["last_drill"] = {
            "time": clock.now().isoformat(), "result": "failed", "failed_mailboxes": failed
        }  # fmt: skip
        w.refresh()
        alerts = [e for e in journal.events() if e.kind == "alert"]
        assert sorted(e.status for e in alerts) == ["drill", "stale"]
        assert any("alice@example.test/INBOX" in e.reason for e in alerts)
        assert [h["event"] for h in Hooks.received] == ["backup_alert", "backup_alert"]
        text = generate_latest(registry).decode()
        assert "mxctl_backup_stale 1.0" in text and "mxctl_backup_drill_passed 0.0" in text
        assert "mxctl_backup_last_good_age_seconds 7200.0" in text
        cached = watch.cached_health(tmp_path, clock)
        assert cached is not None and cached.stale
    finally:
        server.shutdown()
        journal.close()
