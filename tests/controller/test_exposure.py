"""Where the API and witnesses may listen, and where a bearer token may be sent: the pure
rules, and the errors at config load that name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.config.exposure import is_loopback, listen_problem, url_problem
from orchestrator.errors import ConfigError
from tests.controller.test_config import DNS

LOOPBACK = [
    ("127.0.0.1", True),
    ("127.3.4.5", True),
    ("::1", True),
    ("[::1]", True),
    ("localhost", True),
    ("0.0.0.0", False),
    ("::", False),
    ("10.254.81.31", False),
    ("witness.example.net", False),
    ("", False),
]


@pytest.mark.parametrize(("host", "expected"), LOOPBACK)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


URLS = [
    # (url, allow_insecure_http, refused)
    ("https://10.0.0.3:8427/report", False, False),
    ("http://127.0.0.1:8427/report", False, False),
    ("http://[::1]:8427/report", False, False),
    ("http://localhost:8427/report", False, False),
    ("http://10.0.0.3:8427/report", False, True),
    ("http://witness.example.net/report", False, True),
    ("http://10.0.0.3:8427/report", True, False),
]


@pytest.mark.parametrize(("url", "allowed", "refused"), URLS)
def test_url_problem(url: str, allowed: bool, refused: bool) -> None:
    problem = url_problem(url, "witnesses.w1.token", "witnesses.w1", allowed)
    assert (problem is not None) is refused
    if problem:
        assert "witnesses.w1.token" in problem
        assert "witnesses.w1.allow_insecure_http = true" in problem


LISTENS = [
    # (listen, tls, allow_insecure_http, refused)
    ("127.0.0.1", False, False, False),
    ("::1", False, False, False),
    ("0.0.0.0", False, False, True),
    ("10.0.0.5", False, False, True),
    ("0.0.0.0", True, False, False),
    ("0.0.0.0", False, True, False),
]


@pytest.mark.parametrize(("listen", "tls", "allowed", "refused"), LISTENS)
def test_listen_problem(listen: str, tls: bool, allowed: bool, refused: bool) -> None:
    problem = listen_problem("api", listen, tls, allowed)
    assert (problem is not None) is refused
    if problem:
        assert "api.tls_cert" in problem and "api.allow_insecure_http = true" in problem


def _load(tmp_path: Path, tables: str) -> list[str]:
    """Problems of a config with the given controller tables ([] when it loads)."""
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
{tables}
"""  # fmt: skip
    try:
        parse_config(text, environ={"TSIG": "c2VjcmV0", "WT": "t0ken", "API": "a"})
    except ConfigError as error:
        return [p.removeprefix("<config>: ") for p in error.problems]
    return []


def test_a_witness_over_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    table = '[witnesses.sender]\nurl = "http://10.0.0.3:8427/report"\ntoken = "env:WT"\n'
    problems = _load(tmp_path, table)
    assert len(problems) == 1, problems
    assert problems[0].startswith("witnesses.sender.url: plain http:// to 10.0.0.3 would send")
    assert "witnesses.sender.allow_insecure_http = true" in problems[0]
    assert _load(tmp_path, table + "allow_insecure_http = true\n") == []
    assert _load(tmp_path, table.replace("10.0.0.3", "127.0.0.1")) == []
    assert _load(tmp_path, table.replace("http://", "https://")) == []


def test_api_off_loopback_needs_tls_or_an_explicit_allowance(tmp_path: Path) -> None:
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    cert.write_text("cert")
    key.write_text("key")
    key.chmod(0o600)
    table = '[api]\nlisten = "0.0.0.0"\ntoken = "env:API"\n'
    problems = _load(tmp_path, table)
    assert len(problems) == 1, problems
    assert problems[0].startswith("api.listen: '0.0.0.0' is not a loopback address")
    assert _load(tmp_path, table + "allow_insecure_http = true\n") == []
    assert _load(tmp_path, table + f'tls_cert = "{cert}"\ntls_key = "{key}"\n') == []
    # Half a TLS setup names the missing half; a readable key is refused.
    assert _load(tmp_path, table + f'tls_cert = "{cert}"\n') == [
        "api.tls_key: required with api.tls_cert",
        "api.listen: '0.0.0.0' is not a loopback address and there is no TLS: listen on "
        "127.0.0.1, or serve HTTPS (set api.tls_cert and api.tls_key), or set "
        "api.allow_insecure_http = true to accept plain HTTP on the network",
    ]
    key.chmod(0o644)
    problems = _load(tmp_path, table + f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    assert problems == [f"api.tls_key: {key} must not be readable by group or others: chmod 600"]


def test_a_webhook_with_a_password_over_plain_http_is_refused(tmp_path: Path) -> None:
    table = '[notify]\nwebhooks = ["https://ok.example.net/h", "http://u:pw@hooks.example.net/h"]\n'
    problems = _load(tmp_path, table)
    assert problems == [
        "notify.webhooks[1]: plain http:// to hooks.example.net would send the password in "
        "its URL in clear: use https://, or set notify.allow_insecure_http = true"
    ]
    assert _load(tmp_path, table + "allow_insecure_http = true\n") == []
    # Without credentials a webhook sends nothing secret: plain http:// stays allowed.
    assert _load(tmp_path, '[notify]\nwebhooks = ["http://hooks.example.net/h"]\n') == []
