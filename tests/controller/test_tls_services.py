"""The API and a witness over TLS, on loopback with a throw-away CA: verified clients get
through, unverified ones and plain HTTP do not, and a witness refuses to serve what its
config does not allow."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mxlab.standins.certs import Authority, make_authority, server_context

from orchestrator.api.server import HttpService, Route, json_reply, server_tls
from orchestrator.cli.controller_cmd import _live_status
from orchestrator.config import parse_config
from orchestrator.config.controller_section import TlsFiles, WitnessConfig
from orchestrator.config.secrets import Secret
from orchestrator.controller.model import Health
from orchestrator.controller.observe import client_tls, fetch_witness
from orchestrator.controller.witness import Witness
from orchestrator.errors import ConfigError
from tests.controller.test_config import DNS

TOKEN = Secret("w1tness-t0ken", "env:WT")


@pytest.fixture(scope="module")
def authority() -> Authority:
    return make_authority("mxctl test CA")


def _tls_files(authority: Authority, directory: Path) -> tuple[ssl.SSLContext, TlsFiles]:
    context = server_context(authority, ("localhost",), directory)
    cert = next(directory.glob("localhost-*.crt"))
    return context, TlsFiles(str(cert), str(cert.with_suffix(".key")))


def _report_service(tls: ssl.SSLContext) -> HttpService:
    def report(_: dict[str, Any]) -> tuple[int, str, bytes]:
        taken = datetime.now(UTC).isoformat()
        return json_reply(200, {"taken_at": taken, "hosts": {"mx1.example.test": "up"}})

    routes = [Route("GET", "/report", report, needs_token=True)]
    return HttpService("127.0.0.1", 0, TOKEN, routes, tls).start()


def test_api_over_tls_serves_verified_clients_only(authority: Authority, tmp_path: Path) -> None:
    ca = authority.write(tmp_path / "ca.pem")
    _, files = _tls_files(authority, tmp_path)
    service = _report_service(server_tls(files.cert, files.key))
    url = f"https://localhost:{service.port}/report"
    auth = {"Authorization": f"Bearer {TOKEN.reveal()}"}
    try:
        reply = httpx.get(url, headers=auth, verify=client_tls(ca))
        assert reply.status_code == 200 and reply.json()["hosts"] == {"mx1.example.test": "up"}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url, headers=auth)  # the system's CAs do not know the test CA
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://localhost:{service.port}/report", headers=auth)
        # A failed handshake does not stop the service.
        assert httpx.get(url, headers=auth, verify=client_tls(ca)).status_code == 200
    finally:
        service.stop()


def test_controller_reads_a_tls_witness_with_the_configured_ca(
    authority: Authority, tmp_path: Path
) -> None:
    ca = authority.write(tmp_path / "ca.pem")
    context, _ = _tls_files(authority, tmp_path)
    service = _report_service(context)
    url = f"https://localhost:{service.port}/report"
    try:
        now = datetime.now(UTC)
        trusted = WitnessConfig("w1", url, TOKEN, 2.0, ca_file=ca)
        assert fetch_witness(trusted, now, 60).hosts == {"mx1.example.test": Health.UP}
        other_ca = make_authority("another CA").write(tmp_path / "other.pem")
        for untrusted in (
            WitnessConfig("w1", url, TOKEN, 2.0, ca_file=other_ca),
            WitnessConfig("w1", url, TOKEN, 2.0),  # system CAs
        ):
            assert fetch_witness(untrusted, now, 60).hosts == {}  # abstains
    finally:
        service.stop()


def _witness(tmp_path: Path, table: str) -> Witness:
    key = tmp_path / "id"
    key.write_text("k")
    key.chmod(0o600)
    text = DNS + f"""
[pair]
primary = "mx1.example.test"
standby = "mx2.example.test"
[ssh]
key_file = "{key}"
known_hosts = "{key}"
[witnesses.w1]
token = "env:WT"
{table}
"""  # fmt: skip
    config = parse_config(text, environ={"TSIG": "c2VjcmV0", "WT": TOKEN.reveal()})
    return Witness(config, "w1")


def test_witness_serves_https_with_its_certificate(authority: Authority, tmp_path: Path) -> None:
    ca = authority.write(tmp_path / "ca.pem")
    _, files = _tls_files(authority, tmp_path)
    table = f'url = "https://localhost:0/report"\ntls_cert = "{files.cert}"\n'
    witness = _witness(tmp_path, table + f'tls_key = "{files.key}"\n')
    service = witness.service(listen="127.0.0.1").start()
    try:
        reply = httpx.get(f"https://localhost:{service.port}/health", verify=client_tls(ca))
        assert reply.json() == {"ok": True, "witness": "w1"}
    finally:
        service.stop()


def test_witness_refuses_to_serve_what_its_config_does_not_allow(
    authority: Authority, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"witnesses\.w1\.tls_cert: required to serve"):
        _witness(tmp_path, 'url = "https://localhost:0/report"').service()
    # The controller's copy of the config names the witness's files without having them:
    # it loads; the witness itself, where they are missing, stops with the field named.
    table = 'url = "https://localhost:0/report"\ntls_cert = "/nonexistent/w.crt"\n'
    missing = _witness(tmp_path, table + 'tls_key = "/nonexistent/w.key"\n')
    with pytest.raises(ConfigError, match=r"witnesses\.w1\.tls_cert: cannot serve"):
        missing.service()
    _, files = _tls_files(authority, tmp_path)
    Path(files.key).chmod(0o640)
    table = f'url = "https://localhost:0/report"\ntls_cert = "{files.cert}"\n'
    readable = _witness(tmp_path, table + f'tls_key = "{files.key}"\n')
    with pytest.raises(ConfigError, match=r"witnesses\.w1\.tls_key: .* must not be readable"):
        readable.service()
    loopback = _witness(tmp_path, 'url = "http://127.0.0.1:0/report"')
    with pytest.raises(ConfigError, match=r"'0\.0\.0\.0' is not a loopback address"):
        loopback.service(listen="0.0.0.0")
    service = loopback.service().start()  # plain HTTP on loopback: fine
    service.stop()


def test_status_reads_its_own_controller_over_tls(authority: Authority, tmp_path: Path) -> None:
    """`mxctl status` reaches the API by address and verifies the name in its certificate."""
    ca = authority.write(tmp_path / "ca.pem")
    _, files = _tls_files(authority, tmp_path)
    routes = [Route("GET", "/status", lambda _: json_reply(200, {"primary": "mx1"}), False)]
    service = HttpService("127.0.0.1", 0, None, routes, server_tls(files.cert, files.key))
    service.start()
    try:
        table = f"""[api]
listen = "127.0.0.1"
port = {service.port}
tls_cert = "{files.cert}"
tls_key = "{files.key}"
"""
        witness = 'url = "http://127.0.0.1:1/r"\n'  # the config needs one; unused here
        untrusting = _witness(tmp_path, witness + table).config
        assert _live_status(untrusting) is None  # the system's CAs do not know the test CA
        trusting = _witness(tmp_path, witness + table + f'ca_file = "{ca}"\n').config
        assert _live_status(trusting) == {"primary": "mx1"}
    finally:
        service.stop()
