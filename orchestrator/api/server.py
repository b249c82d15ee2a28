"""A small threaded HTTP service with token-protected routes (stdlib http.server).

Reading endpoints that only describe state are open (/health, /status, /metrics), as
Prometheus and load balancers expect; every route that changes something, and the
witness's report (it is evidence the controller acts on), needs `Authorization: Bearer
TOKEN`, compared in constant time. Off loopback the service speaks TLS (config/exposure.py):
the handshake runs in the request's own thread, so a slow or broken client never holds up
the others.
"""

from __future__ import annotations

import hmac
import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orchestrator.config.secrets import Secret

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], tuple[int, str, bytes]]


def json_reply(status: int, body: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, indent=2, default=str).encode()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    needs_token: bool


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class _TlsHttpServer(ThreadingHTTPServer):
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("http: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class HttpService:
    def __init__(
        self,
        host: str,
        port: int,
        token: Secret | None,
        routes: list[Route],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._routes = {(r.method, r.path): r for r in routes}
        self._token = token
        service = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service._dispatch(self, "GET")

            def do_POST(self) -> None:
                service._dispatch(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self._server = _TlsHttpServer((host, port), _Handler)
        self._server.tls = tls
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HttpService:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _authorised(self, request: BaseHTTPRequestHandler) -> bool:
        if self._token is None or not self._token.reveal():
            return False  # no token configured: mutating routes are off, not open
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self._token.reveal()}"
        return hmac.compare_digest(given.encode(), expected.encode())

    def _dispatch(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = request.path.split("?", 1)[0]
        route = self._routes.get((method, path))
        if route is None:
            known = sorted(f"{m} {p}" for m, p in self._routes)
            status, ctype, body = json_reply(404, {"error": f"no route; known: {known}"})
        elif route.needs_token and not self._authorised(request):
            status, ctype, body = json_reply(401, {"error": "missing or wrong bearer token"})
        else:
            payload: dict[str, Any] = {}
            length = int(request.headers.get("Content-Length") or 0)
            if length:
                try:
                    payload = json.loads(request.rfile.read(length))
                except ValueError:
                    payload = {"_invalid": True}
            try:
                status, ctype, body = route.handler(payload)
            except Exception as exc:  # a bad request must not kill the service
                log.exception("http %s %s failed", method, path)
                status, ctype, body = json_reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        request.send_response(status)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
