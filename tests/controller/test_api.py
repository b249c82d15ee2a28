"""The HTTP endpoints: open reads, token-protected changes, Prometheus metrics."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import generate_latest

from orchestrator.api.server import HttpService, Route, json_reply
from orchestrator.config.secrets import Secret
from orchestrator.controller.metrics import ControllerMetrics


def _service(token: Secret | None, calls: list[str]) -> HttpService:
    def status(_: dict[str, Any]) -> tuple[int, str, bytes]:
        return json_reply(200, {"primary": "mx1.example.test"})

    def pause(payload: dict[str, Any]) -> tuple[int, str, bytes]:
        calls.append("pause")
        return json_reply(200, {"ok": True})

    routes = [
        Route("GET", "/status", status, needs_token=False),
        Route("POST", "/pause", pause, needs_token=True),
    ]
    return HttpService("127.0.0.1", 0, token, routes).start()


def test_reads_are_open_and_changes_need_the_token() -> None:
    calls: list[str] = []
    service = _service(Secret("s3cret", "env:T"), calls)
    base = f"http://127.0.0.1:{service.port}"
    try:
        assert httpx.get(f"{base}/status").json() == {"primary": "mx1.example.test"}
        assert httpx.post(f"{base}/pause").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{base}/pause", headers=wrong).status_code == 401
        assert calls == []
        right = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{base}/pause", headers=right).status_code == 200
        assert calls == ["pause"]
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        service.stop()


def test_without_a_configured_token_changes_are_off_not_open() -> None:
    calls: list[str] = []
    service = _service(None, calls)
    try:
        reply = httpx.post(f"http://127.0.0.1:{service.port}/pause",
                           headers={"Authorization": "Bearer x"})  # fmt: skip
        assert reply.status_code == 401 and calls == []
    finally:
        service.stop()


def test_metrics_expose_probe_results_state_and_failovers() -> None:
    metrics = ControllerMetrics()
    metrics.probe_ok.labels("controller", "mx1.example.test", "smtp").set(1)
    metrics.is_primary.labels("mx1.example.test").set(1)
    metrics.failovers.labels("done").inc()
    metrics.dns_verify.set(0.042)
    text = generate_latest(metrics.registry).decode()
    assert 'mxctl_probe_ok{host="mx1.example.test",observer="controller",probe="smtp"} 1.0' in text
    assert 'mxctl_primary{host="mx1.example.test"} 1.0' in text
    assert 'mxctl_failovers_total{status="done"} 1.0' in text
    assert "mxctl_dns_verify_seconds 0.042" in text
