"""A webhook receiver on loopback: what the controller posted, and when each arrived.

Tests and benches point `[notify] webhooks` at `url` and read `got` (monotonic arrival
time, JSON body) to see which alerts opened and resolved, and when."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.append((time.monotonic(), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the tests read `got`; stderr stays for failures

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.got]

    def first(self, alert: str, state: str, timeout: float, since: float = 0.0) -> float | None:
        """When the first `alert` post in `state` arrived (at or after `since`), waiting up
        to `timeout` seconds for it; None if it never came."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                at
                for at, b in list(self.got)
                if (b.get("alert"), b.get("state")) == (alert, state) and at >= since
            ]
            if found:
                return min(found)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
