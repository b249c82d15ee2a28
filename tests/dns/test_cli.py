"""`mxctl dns show|plan|apply|verify` against the real BIND pair."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from orchestrator.cli import main

from .conftest import ENVIRON, ProviderEnv, run_mxctl


@pytest.fixture
def config_file(bind_setup: ProviderEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in ENVIRON.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "mxctl.toml"
    path.write_text(bind_setup.config_text)
    monkeypatch.setenv("MXCTL_CONFIG", str(path))
    return path


def test_dns_commands_are_registered_in_main() -> None:
    assert "orchestrator.cli.dns_cmd" in main.COMMAND_MODULES


def test_show_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_mxctl(["dns", "show", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["provider"] == "rfc2136"
    assert data["records"][0] == {
        "name": "example.test.",
        "type": "MX",
        "ttl": 300,
        "rdatas": ["10 mx1.example.test."],
    }


def test_plan_json_changes_nothing(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_mxctl(["dns", "plan", "--mx", "mx2.example.test", "--json"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert {c["kind"] for c in plan["changes"]} == {"create", "update"}
    code, out, _ = run_mxctl(["dns", "show", "--json", "--config", str(config_file)], capsys)
    assert json.loads(out)["records"][0]["rdatas"] == ["10 mx1.example.test."]


def test_apply_asks_first(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.StringIO("n\n")
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = run_mxctl(["dns", "apply", "--mx", "mx2.example.test"], capsys)
    assert code == 1 and "not applied" in err
    assert "update example.test. 300 MX 10 mx1.example.test." in out
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: refuse, never assume yes
    code, _, err = run_mxctl(["dns", "apply", "--mx", "mx2.example.test"], capsys)
    assert code == 2 and "pass --yes" in err
    code, out, _ = run_mxctl(["dns", "show", "--json"], capsys)
    assert json.loads(out)["records"][0]["rdatas"] == ["10 mx1.example.test."]


def test_apply_yes_then_verify(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_mxctl(
        ["dns", "apply", "--mx", "mx2.example.test", "--yes", "--json"], capsys
    )
    assert code == 0, out
    data = json.loads(out)
    assert [r["outcome"] for r in data["results"]] == ["applied"] * 4
    assert data["verify"]["ok"] is True
    code, out, _ = run_mxctl(["dns", "verify"], capsys)
    assert code == 0
    assert out.startswith("verified at every authoritative server")
    assert out.count("MX 10 mx2.example.test.") == 4  # two zones at two servers


def test_errors_are_one_line(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_mxctl(["dns", "plan", "--mx", "mx7.example.test"], capsys)
    assert code == 1
    assert err.startswith("mxctl: error: unsafe DNS plan: mx7.example.test is not a configured")
    code, _, err = run_mxctl(["dns", "show", "--config", "/nonexistent.toml"], capsys)
    assert code == 2 and "not found" in err
