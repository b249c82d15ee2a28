"""`mxctl witness`: probe the pair from another vantage point and serve the latest report.

The controller counts each witness as an observer: a primary is dead only when a majority
of observers lose it. The report is evidence the controller acts on, so reading it needs
the witness's bearer token. A witness never acts; it only observes.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from orchestrator.api.server import HttpService, Route, json_reply, server_tls
from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config import exposure
from orchestrator.config.controller_section import WitnessConfig
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.observe import local_round, probe_settings
from orchestrator.errors import ConfigError

log = logging.getLogger("mxctl.witness")


def witness_config(config: MxctlConfig, name: str) -> WitnessConfig:
    for witness in config.witnesses:
        if witness.name == name:
            return witness
    known = ", ".join(w.name for w in config.witnesses) or "none"
    raise ConfigError(f"witnesses.{name}: no such witness in {config.path} (known: {known})")


def _serving_tls(where: str, cert: str, key: str) -> ssl.SSLContext:
    """The witness's own certificate, checked here, on its host (the controller's copy of
    the config names these files without having them)."""
    try:
        if os.stat(key).st_mode & 0o077:
            raise ConfigError(f"{where}.tls_key: {key} must not be readable by group or others")
        return server_tls(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.tls_cert: cannot serve {cert} with {key}: {exc}") from None


class Witness:
    def __init__(self, config: MxctlConfig, name: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.me = witness_config(config, name)
        self.clock = clock
        self._report: dict[str, Any] = {}
        self._lock = threading.Lock()

    def observe_once(self) -> dict[str, Any]:
        # The witness does not know about failovers; it probes both hosts as named in the
        # config (roles do not matter for health, only names do).
        pair = self.config.pair
        settings = probe_settings(
            self.config.probes, self.config.dns, None, pair.primary, pair.standby
        )
        now = self.clock.now()
        report = local_round(self.me.name, settings, self.clock).to_json(now)
        with self._lock:
            self._report = report
        return report

    def report(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._report)

    def service(self, listen: str | None = None) -> HttpService:
        """Bound to `listen`, else to the host in its URL (loopback by default); an https://
        URL is served over TLS with its tls_cert, and plain HTTP stays on loopback unless
        the config allows it (config/exposure.py)."""
        parts = urlsplit(self.me.url)
        host = listen or parts.hostname or "127.0.0.1"
        where = f"witnesses.{self.me.name}"
        tls = None
        if parts.scheme == "https":
            if not self.me.tls:
                raise ConfigError(
                    f"{where}.tls_cert: required to serve its https:// url "
                    f"(with {where}.tls_key, on the witness's host)"
                )
            tls = _serving_tls(where, self.me.tls.cert, self.me.tls.key)
        elif problem := exposure.listen_problem(where, host, False, self.me.allow_insecure_http):
            raise ConfigError(f"mxctl witness --listen {host}: {problem}")
        port = parts.port or (443 if tls else 80)

        def report(_: dict[str, Any]) -> tuple[int, str, bytes]:
            body = self.report()
            return json_reply(200, body) if body else json_reply(503, {"error": "no round yet"})

        def health(_: dict[str, Any]) -> tuple[int, str, bytes]:
            return json_reply(200, {"ok": True, "witness": self.me.name})

        routes = [
            Route("GET", parts.path or "/report", report, needs_token=True),
            Route("GET", "/health", health, needs_token=False),
        ]
        return HttpService(host, port, self.me.token, routes, tls)

    def run_forever(self, stop: threading.Event, listen: str | None = None) -> None:
        service = self.service(listen).start()
        # Twice per controller cycle: the controller reads the latest report, and a report
        # a whole interval old would cost a failover one extra cycle.
        interval = self.config.policy.interval / 2
        try:
            while not stop.is_set():
                started = self.clock.monotonic()
                try:
                    report = self.observe_once()
                    log.info("witness %s: %s", self.me.name, report["hosts"])
                except Exception:  # a witness keeps serving whatever happens
                    log.exception("witness round failed")
                stop.wait(max(0.0, interval - (self.clock.monotonic() - started)))
        finally:
            service.stop()
