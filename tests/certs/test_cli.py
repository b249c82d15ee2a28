"""`mxctl cert status|renew` end to end: real Pebble, real BIND (rfc2136), a real config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mxlab.standins.dnsenv import ENVIRON, ProviderEnv
from mxlab.standins.pebble import Pebble

from orchestrator.cli.main import main


def _config(pebble: Pebble, env: ProviderEnv, tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mxctl.toml"
    path.write_text(
        env.config_text
        + f"""
[certs]
directory_url = "{pebble.directory_url}"
account_key = "{tmp_path}/acme/account.key"
ca_bundle = "{pebble.listener_ca}"
store = "{tmp_path}/tls"
attempts = 1

[certs.certificates]
"mx1.example.test" = ["mx1.example.test", "mail.example.test"]
{extra}
"""
    )
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {"text": out}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)


def test_status_renew_and_forced_renew(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(pebble, bind_setup, tmp_path))
    code, status = _run(["cert", "status", "--config", config, "--json"], capsys)
    assert code == 0
    [before] = status["certificates"]  # type: ignore[misc]
    assert before["due"] is True and before["reason"] == "no certificate installed"

    code, renewed = _run(["cert", "renew", "--config", config, "--json", "--no-install"], capsys)
    assert code == 0
    [first] = renewed["results"]  # type: ignore[misc]
    assert first["outcome"] == "renewed"
    assert first["installed"]["names"] == ["mail.example.test", "mx1.example.test"]

    code, again = _run(["cert", "renew", "--config", config, "--json", "--no-install"], capsys)
    [second] = again["results"]  # type: ignore[misc]
    assert (code, second["outcome"]) == (0, "not-due")
    assert "renewal due at" in second["reason"]

    code, forced = _run(
        ["cert", "renew", "--config", config, "--json", "--no-install", "--force"], capsys
    )
    [third] = forced["results"]  # type: ignore[misc]
    assert (code, third["outcome"], third["reason"]) == (0, "renewed", "renewal forced")
    assert third["installed"]["serial"] != first["installed"]["serial"]

    code, text = _run(["cert", "status", "--config", config], capsys)
    assert "mx1.example.test [mx1.example.test, mail.example.test]: ok: valid until" in str(
        text["text"]
    )


def test_a_name_outside_the_zones_is_a_config_error_naming_the_field(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(pebble, bind_setup, tmp_path, '"web" = ["www.elsewhere.example"]')
    assert main(["cert", "status", "--config", str(config)]) != 0
    assert main(["cert", "renew", "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert "certs.certificates.web: www.elsewhere.example is in none of dns.zones" in err
