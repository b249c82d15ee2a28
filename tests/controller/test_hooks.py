"""Failover hooks run with a clean environment: PATH, LANG and the move's MXCTL_* only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from orchestrator.controller.failover import Move, run_hooks
from orchestrator.controller.hookenv import DEFAULT_LANG, DEFAULT_PATH, hook_environment

MOVE = Move("failover", "mx1.example.test", "mx2.example.test", "mx1 dead for 3 cycles")
DUMP_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
EVENT = {
    "MXCTL_EVENT": "failover",
    "MXCTL_OLD_PRIMARY": "mx1.example.test",
    "MXCTL_NEW_PRIMARY": "mx2.example.test",
    "MXCTL_REASON": "mx1 dead for 3 cycles",
}

ENVIRONMENTS = [
    # (controller's environment, what the hook gets besides the MXCTL_* event variables)
    ({"PATH": "/opt/bin:/usr/bin", "LANG": "de_DE.UTF-8"}, {"PATH": "/opt/bin:/usr/bin",
                                                            "LANG": "de_DE.UTF-8"}),
    ({}, {"PATH": DEFAULT_PATH, "LANG": DEFAULT_LANG}),
    ({"PATH": "/usr/bin", "HOME": "/root", "CF_API_TOKEN": "cf-secret",
      "MXCTL_TSIG_SECRET": "tsig-secret", "MXCTL_EVENT": "forged", "LC_ALL": "C"},
     {"PATH": "/usr/bin", "LANG": DEFAULT_LANG}),
]  # fmt: skip


@pytest.mark.parametrize(("parent", "expected"), ENVIRONMENTS)
def test_hook_environment(parent: dict[str, str], expected: dict[str, str]) -> None:
    env = hook_environment(MOVE.kind, MOVE.old_primary, MOVE.new_primary, MOVE.reason, parent)
    assert env == {**expected, **EVENT}


def test_a_secret_in_the_controllers_environment_does_not_reach_a_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real hook process dumps the environment it got. The controller's environment holds
    the secrets its config resolved with `env:` (named as an operator might, MXCTL_ too)."""
    secrets = {
        "MXCTL_TSIG_SECRET": "c2VjcmV0IHRzaWcga2V5IGZvciB0ZXN0cw==",
        "CLOUDFLARE_API_TOKEN": "cf-token-that-must-stay-in-the-controller",
        "MXCTL_PROBE_PASSWORD": "probe-password-that-must-stay",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    dump = tmp_path / "env.json"
    evidence = run_hooks(((sys.executable, "-c", DUMP_ENV, str(dump)),), MOVE, timeout=30)
    assert evidence["hooks"][0]["exit"] == 0
    got = json.loads(dump.read_text())
    assert set(got) == {"PATH", "LANG", *EVENT}, sorted(got)
    assert {k: got[k] for k in EVENT} == EVENT
    for value in secrets.values():
        assert value not in json.dumps(got)
