"""`mxctl-dsync sync` right after the service (re)started: it waits for the port to open
(a deploy restarts the service and asks for a sync of every user at once)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.replication.__main__ import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "dsync.json"
    path.write_text(json.dumps({"host": "mx1", "peer": "mx2", "port": 12345, "event_port": port}))
    return path


def _serve_later(port: int, delay: float, asked: list[dict[str, Any]]) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"queued 3\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    time.sleep(delay)
    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_sync_waits_for_a_service_that_is_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    asked: list[dict[str, Any]] = []
    servers: list[HTTPServer] = []
    starter = threading.Thread(target=lambda: servers.append(_serve_later(port, 1.5, asked)))
    starter.start()
    try:
        assert main(["--config", str(_config(tmp_path, port)), "sync", "--all"]) == 0
    finally:
        starter.join()
        for server in servers:
            server.shutdown()
    assert asked == [{"all": True}]
    assert "queued 3" in capsys.readouterr().out


def test_status_does_not_wait_for_a_service_that_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path, _free_port())), "status"]) == 75
    assert "replication is not running" in capsys.readouterr().err
