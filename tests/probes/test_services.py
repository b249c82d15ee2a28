"""Service probes against real SMTP/IMAP servers on loopback, healthy and broken."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from mxlab.standins.certs import Authority, make_authority, server_context
from mxlab.standins.mailservers import PASSWORD, USER, Behaviour, serve

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.secrets import Secret
from orchestrator.probes import services
from orchestrator.probes.result import ErrorClass, ProbeResult
from orchestrator.probes.settings import (
    MailHostTarget,
    Ports,
    ProbeSettings,
    ProbeUser,
    Timeouts,
)

MX = "mx.test"
CLIENT = "mail.test"
HOST = MailHostTarget(name="mx", fqdn=MX, address="127.0.0.1", role="primary")


@pytest.fixture(scope="module")
def authority() -> Authority:
    return make_authority()


@pytest.fixture
def ca_file(authority: Authority, tmp_path: Path) -> str:
    return authority.write(tmp_path / "ca.pem")


def _settings(
    ca_file: str, port: int, password: str = PASSWORD, timeout: float = 1.0
) -> ProbeSettings:
    return ProbeSettings(
        hosts=(HOST,),
        client_name=CLIENT,
        probe_user=ProbeUser(USER, Secret(password, "env:TEST")),
        helo_name="probe.test",
        ca_file=ca_file,
        timeouts=Timeouts(smtp=timeout, submission=timeout, imap=timeout),
        ports=Ports(smtp=port, submission=port, imaps=port, imap=port),
    )


def _run(kind: str, behaviour: Behaviour, probe: str, ca_file: str, **kw: object) -> ProbeResult:
    async def go() -> ProbeResult:
        async with serve(kind, behaviour) as port:
            settings = _settings(ca_file, port, **kw)  # type: ignore[arg-type]
            return await services.probe_service(probe, settings, HOST, SYSTEM_CLOCK)

    return asyncio.run(go())


def _good(authority: Authority, tmp_path: Path, name: str = MX, **kw: float) -> Behaviour:
    return Behaviour(tls=server_context(authority, (name, CLIENT), tmp_path, **kw))


def test_smtp_healthy_reports_banner_and_certificate(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    result = _run("smtp", _good(authority, tmp_path), "smtp", ca_file)
    assert result.ok, result.summary()
    assert result.error is None
    assert result.details["banner"] == "mx.test ESMTP synthetic"
    assert result.details["banner_code"] == 220
    assert result.details["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert 396 < float(result.details["cert_days_left"]) <= 397  # type: ignore[arg-type]
    assert result.details["cert_names"] == "mx.test,mail.test"
    assert 0 < result.latency < 1


def test_nothing_listening_is_refused_at_connect(ca_file: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: the kernel answers RST

    async def go() -> ProbeResult:
        return await services.smtp(_settings(ca_file, port), HOST, SYSTEM_CLOCK)

    result = asyncio.run(go())
    assert (result.ok, result.error, result.step) == (False, ErrorClass.REFUSED, "connect")
    assert result.latency < 0.5


def test_silent_server_is_a_timeout_at_the_banner(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path), silent=True)
    result = _run("smtp", behaviour, "smtp", ca_file, timeout=0.3)
    assert (result.error, result.step) == (ErrorClass.TIMEOUT, "banner")
    assert 0.3 <= result.latency < 0.6


def test_554_banner_is_an_unexpected_reply_with_its_code(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path), banner="554 5.3.2 not accepting mail")
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.UNEXPECTED_REPLY, "banner")
    assert result.details["banner_code"] == 554
    assert "554" in result.message


def test_garbage_banner_is_a_protocol_error(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path), banner="SSH-2.0-OpenSSH_9.2p1")
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.PROTOCOL, "banner")


def test_no_starttls_offered_is_an_unexpected_reply(ca_file: str) -> None:
    result = _run("smtp", Behaviour(tls=None), "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.UNEXPECTED_REPLY, "ehlo")
    assert "STARTTLS" in result.message


def test_plaintext_after_starttls_is_a_tls_error(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path), plaintext_after_starttls=True)
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.TLS, "tls")


def test_certificate_from_another_ca_is_rejected(ca_file: str, tmp_path: Path) -> None:
    stranger = make_authority("some other CA")
    result = _run("smtp", _good(stranger, tmp_path), "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.CERTIFICATE, "tls")
    assert "unable to get local issuer certificate" in result.message


def test_certificate_for_another_name_is_rejected(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = Behaviour(tls=server_context(authority, ("other.test",), tmp_path))
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.CERTIFICATE, "tls")
    assert "Hostname mismatch" in result.message


def test_expired_certificate_is_rejected(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = _good(authority, tmp_path, valid_from_days=-30, valid_until_days=-1)
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.CERTIFICATE, "tls")
    assert "expired" in result.message


def test_certificate_expiring_within_the_warning_days_fails_with_its_date(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = _good(authority, tmp_path, valid_until_days=5)
    result = _run("smtp", behaviour, "smtp", ca_file)
    assert (result.error, result.step) == (ErrorClass.CERTIFICATE, "certificate")
    assert 4.9 < float(result.details["cert_days_left"]) <= 5  # type: ignore[arg-type]
    assert "expires in 5.0 days" in result.message


def test_submission_logs_in_as_the_probe_user(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    result = _run("smtp", _good(authority, tmp_path, name=CLIENT), "submission", ca_file)
    assert result.ok, result.summary()
    assert result.details["auth_code"] == 235
    assert result.details["cert_name"] == CLIENT


def test_submission_with_a_wrong_password_is_an_auth_error(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = _good(authority, tmp_path, name=CLIENT)
    result = _run("smtp", behaviour, "submission", ca_file, password="wrong")
    assert (result.error, result.step) == (ErrorClass.AUTH, "auth")
    assert result.details["auth_code"] == 535
    assert "wrong" not in result.message  # the password never appears


@pytest.mark.parametrize(("kind", "probe"), [("imaps", "imaps"), ("imap", "imap-starttls")])
def test_imap_logs_in_and_selects(
    kind: str, probe: str, authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path, name=CLIENT), banner="* OK synthetic ready.")
    result = _run(kind, behaviour, probe, ca_file)
    assert result.ok, result.summary()
    assert (result.step, result.details["messages"]) == ("logout", 0)
    assert result.details["greeting"] == "* OK synthetic ready."


@pytest.mark.parametrize(("kind", "probe"), [("imaps", "imaps"), ("imap", "imap-starttls")])
def test_imap_with_a_wrong_password_is_an_auth_error(
    kind: str, probe: str, authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(_good(authority, tmp_path, name=CLIENT), banner="* OK synthetic ready.")
    result = _run(kind, behaviour, probe, ca_file, password="nope")
    assert (result.error, result.step) == (ErrorClass.AUTH, "login")
    assert "AUTHENTICATIONFAILED" in result.message


def test_imap_bye_greeting_is_an_unexpected_reply(
    authority: Authority, ca_file: str, tmp_path: Path
) -> None:
    behaviour = replace(
        _good(authority, tmp_path, name=CLIENT), banner="* BYE Too many connections"
    )
    result = _run("imaps", behaviour, "imaps", ca_file)
    assert (result.error, result.step) == (ErrorClass.UNEXPECTED_REPLY, "greeting")


def test_imaps_against_a_plaintext_server_is_a_tls_error(ca_file: str) -> None:
    result = _run("smtp", Behaviour(tls=None), "imaps", ca_file)
    assert (result.error, result.step) == (ErrorClass.TLS, "tls")


def test_settings_never_show_the_probe_password(ca_file: str) -> None:
    settings = _settings(ca_file, 25, password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "***" in repr(settings)
