"""Renewal through Pebble + BIND on loopback: a DNS provider that fails during renewal is
retried, alerted (journal + webhook) and the old certificate is kept; one that recovers
within the attempts renews. The failing provider is the real rfc2136 provider pointed at
a port nothing listens on (connection refused), not a mock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mxlab.standins.dnsenv import ENVIRON, ProviderEnv
from mxlab.standins.dnsservers import free_port
from mxlab.standins.pebble import Pebble

from orchestrator.certs.account import load_or_create_account_key
from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.issuer import AcmeIssuer, AcmeServer
from orchestrator.certs.renew import Renewer, cert_status
from orchestrator.certs.store import CHAIN_FILE, KEY_FILE
from orchestrator.config import parse_config
from orchestrator.config.certs_section import CertsConfig
from orchestrator.controller.journal import Journal
from orchestrator.dns.factory import make_provider, make_verifier
from tests.fakes import FakeClock

NAMES = ("mx2.example.test", "mail.example.test")


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.got.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


def _certs(pebble: Pebble, tmp_path: Path) -> CertsConfig:
    return CertsConfig(
        directory_url=pebble.directory_url,
        account_key=tmp_path / "acme" / "account.key",
        store=tmp_path / "tls",
        certificates={"mx2.example.test": NAMES},
        ca_bundle=pebble.listener_ca,
        attempts=3,
        retry_wait=30.0,
    )


def _working(env: ProviderEnv) -> ChallengeRecords:
    provider = env.provider()
    return ChallengeRecords(provider, make_verifier(env.config, provider).wait)


def _refusing(env: ProviderEnv) -> ChallengeRecords:
    # The same provider config with the server's port swapped for a closed one; its own
    # retries sleep on a FakeClock, so the test does not wait out the retry budget.
    text = env.config_text.replace(
        f"port = {env.config_text.split('port = ')[1].split()[0]}", f"port = {free_port()}", 1
    )
    text = text.replace("timeout = 3", "timeout = 0.3")  # a dead server: fail fast
    config = parse_config(text, environ=ENVIRON).dns
    provider = make_provider(config, FakeClock())
    env.providers.append(provider)
    return ChallengeRecords(provider, None)


def _renewer(
    pebble: Pebble, tmp_path: Path, records: Any, clock: FakeClock, receiver: Receiver
) -> tuple[Renewer, Journal]:
    config = _certs(pebble, tmp_path)
    server = AcmeServer(config.directory_url, ca_bundle=config.ca_bundle)
    issuer = AcmeIssuer(server, load_or_create_account_key(config.account_key))
    journal = Journal(tmp_path / "journal.db")
    return Renewer(config, issuer, records, clock, journal, (receiver.url,), 2.0), journal


def test_failing_provider_is_retried_alerted_and_the_old_certificate_kept(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path, receiver: Receiver
) -> None:
    clock = FakeClock(datetime.now(UTC))
    renewer, journal = _renewer(pebble, tmp_path, lambda: _working(bind_setup), clock, receiver)
    [first] = renewer.renew()
    assert first.outcome == "renewed" and first.reason == "no certificate installed"
    stored = tmp_path / "tls" / "mx2.example.test"
    before = ((stored / CHAIN_FILE).read_bytes(), (stored / KEY_FILE).read_bytes())

    renewer.records = lambda: _refusing(bind_setup)
    [failed] = renewer.renew(force=True)

    assert failed.outcome == "failed" and failed.attempts == 3
    assert "did not answer _acme-challenge." in failed.error
    assert ((stored / CHAIN_FILE).read_bytes(), (stored / KEY_FILE).read_bytes()) == before
    assert failed.facts == first.facts  # what is installed: still the old one
    assert clock.slept.count(30.0) == 2  # retry_wait between the three attempts
    alerts = [e for e in journal.events() if e.kind == "alert"]
    assert [a.status for a in alerts] == ["cert-renewal-failed"]
    assert "old certificate kept" in alerts[0].reason
    assert [g["event"] for g in receiver.got] == ["cert_renewal_failed"]
    assert receiver.got[0]["installed"]["serial"] == first.facts.serial  # type: ignore[union-attr]
    [status] = cert_status(renewer.config, clock)
    assert status.facts == first.facts and not status.decision.due


def test_provider_that_recovers_within_the_attempts_renews(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path, receiver: Receiver
) -> None:
    clock = FakeClock(datetime.now(UTC))
    calls = []

    def flaky() -> ChallengeRecords:
        calls.append(1)
        return _refusing(bind_setup) if len(calls) == 1 else _working(bind_setup)

    renewer, journal = _renewer(pebble, tmp_path, flaky, clock, receiver)
    [result] = renewer.renew()
    assert result.outcome == "renewed" and result.attempts == 2
    assert result.facts is not None and result.facts.names == frozenset(NAMES)
    assert receiver.got == []
    assert [e.status for e in journal.events() if e.kind == "certificate"] == ["renewed"]
