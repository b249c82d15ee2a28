"""A failover whose old primary answers SSH but cannot be fenced (a read-only /etc, no
processes to fork, an nft error): its guard stands in for the fence once its lease has
passed, and without a guard the failover stops, saying why. SSH is a fake here; the fence
script's guard-reading part runs in a real shell with no PATH (builtins only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.failover import FailoverSteps, Move, ssh_target
from orchestrator.controller.runner import StepFailed
from orchestrator.hostguard import install
from orchestrator.remote import RemoteError, RemoteResult, SshTarget
from tests.fakes import FakeClock

from .test_config import DNS

GUARD = {
    "fqdn": "mx1.example.test",
    "addresses": ["10.0.0.1"],
    "nameservers": ["10.0.0.11", "10.0.0.12"],
    "mx_names": ["example.test"],
    "client_names": ["mail.example.test"],
    "interval": 1,
    "lease": 3,
    "timeout": 0.5,
    "fence_marker": fencing.MARKER,
    "fence_rules": fencing.RULES_FILE,
    "fence_unit": fencing.UNIT,
    "role_file": install.ROLE_FILE,
    "status_file": install.STATUS_FILE,
    "table": install.TABLE,
}
READ_ONLY = "mkdir: cannot create directory '/etc/mxctl': Read-only file system"
FAILOVER = Move("failover", "mx1.example.test", "mx2.example.test", "mx1 dead for 3 cycles")
SWITCHOVER = Move("switchover", "mx1.example.test", "mx2.example.test", "planned", False)


def guard_lines(settings: object) -> str:
    text = json.dumps(settings, indent=2)  # as the deploy renders it
    return "".join(f"{fencing.GUARD_LINE}{line}\n" for line in text.splitlines())


def config(tmp_path: Path) -> MxctlConfig:
    key, known = tmp_path / "id", tmp_path / "known_hosts"
    for f in (key, known):
        f.write_text("x")
        f.chmod(0o600)
    text = (
        DNS
        + f"""
[pair]
primary = "mx1.example.test"
standby = "mx2.example.test"
[ssh]
key_file = "{key}"
known_hosts = "{known}"
"""
    )
    return parse_config(text, environ={"TSIG": "c2VjcmV0"}, required=("dns", "pair", "ssh"))


def fake_ssh(monkeypatch: pytest.MonkeyPatch, result: RemoteResult) -> None:
    def run_remote(target: SshTarget, command: str, timeout: float = 10.0) -> RemoteResult:
        return result

    monkeypatch.setattr(fencing, "run_remote", run_remote)


@pytest.fixture(autouse=True)
def controller_just_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """No guard seen on any host yet (the memory lives as long as the controller)."""
    monkeypatch.setattr(fencing, "_GUARDS_SEEN", {})


NO_SHELL = RemoteResult(1, "", "-bash: fork: Resource temporarily unavailable")
CHECKED = RemoteResult(1, guard_lines(GUARD), "")  # a cycle's fence-state check: not fenced
CHECKED_NO_GUARD = RemoteResult(1, f"{fencing.NO_GUARD}\n", "")


CASES = [
    # (what, an earlier cycle's fence-state check (None: none), the host's answer to the
    #  fence script, the move, seconds waited or the refusal)
    ("read-only /etc, guard deployed: its lease waited out", None,
     RemoteResult(1, guard_lines(GUARD), READ_ONLY), FAILOVER, 5.0),
    ("nft error, guard with a 10 s lease", None,
     RemoteResult(1, guard_lines({**GUARD, "lease": 10, "interval": 2}), "nft: Error"),
     FAILOVER, 13.0),
    ("no guard.json on the host", None, RemoteResult(1, f"{fencing.NO_GUARD}\n", READ_ONLY),
     FAILOVER,
     "no guard on the host"),
    ("out of processes, guard seen by an earlier cycle", CHECKED, NO_SHELL, FAILOVER, 5.0),
    ("out of processes, never seen", None, NO_SHELL, FAILOVER, "showed no guard"),
    ("out of processes, seen without a guard", CHECKED_NO_GUARD, NO_SHELL, FAILOVER,
     "showed no guard"),
    ("out of processes after a check that could not run either", NO_SHELL, NO_SHELL, FAILOVER,
     "showed no guard"),
    ("guard settings unreadable", None,
     RemoteResult(1, guard_lines({**GUARD, "lease": "3"}), READ_ONLY), FAILOVER, "is invalid"),
    ("exit 0 but no 'fenced' line (the marker's path is not it)", None,
     RemoteResult(0, guard_lines(GUARD), ""), FAILOVER, 5.0),
    ("a planned switchover fences for real", None,
     RemoteResult(1, guard_lines(GUARD), READ_ONLY), SWITCHOVER, "its guard does not stand in"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("checked", "answer", "move", "outcome"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_host_that_cannot_be_fenced(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checked: RemoteResult | None,
    answer: RemoteResult,
    move: Move,
    outcome: float | str,
) -> None:
    cfg = config(tmp_path)
    if checked is not None:
        fake_ssh(monkeypatch, checked)
        assert not fencing.is_fenced(ssh_target(cfg, move.old_primary))
    fake_ssh(monkeypatch, answer)
    clock = FakeClock()
    steps = FailoverSteps(cfg, clock)
    if isinstance(outcome, str):
        with pytest.raises(StepFailed) as refused:
            steps.fence(move)
        assert outcome in str(refused.value), refused.value
        assert "mail does not move to mx2.example.test" in str(refused.value)
        assert clock.slept == []
        return
    evidence = steps.fence(move)
    assert clock.slept == [outcome]
    assert evidence["fenced"] is False and evidence["fenced_by_guard"] is True, evidence
    assert evidence["waited_s"] == outcome
    assert "renews its opening only when DNS confirms it primary" in evidence["evidence"]


def test_a_fenced_host_is_fenced_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ssh(monkeypatch, RemoteResult(0, guard_lines(GUARD) + "fenced\n" + fencing.PEER_ONLY, ""))
    clock = FakeClock()
    evidence = FailoverSteps(config(tmp_path), clock).fence(FAILOVER)
    assert evidence["fenced"] is True and clock.slept == []
    assert "peer-only" in evidence["detail"]


def test_an_unreachable_old_primary_is_left_to_dns_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_remote(target: SshTarget, command: str, timeout: float = 10.0) -> RemoteResult:
        raise RemoteError(target.name, "unreachable", "No route to host")

    monkeypatch.setattr(fencing, "run_remote", run_remote)
    clock = FakeClock()
    evidence = FailoverSteps(config(tmp_path), clock).fence(FAILOVER)
    assert evidence["fenced"] is False and "unreachable" in evidence["detail"]
    assert clock.slept == []


def test_the_script_reads_the_guard_settings_with_builtins_only(tmp_path: Path) -> None:
    """No PATH at all: `cat` could not run, the read loop must. The last line has no
    newline, as an editor may leave it."""
    settings = tmp_path / "guard.json"
    settings.write_text(json.dumps(GUARD, indent=2))
    first = fencing.fence_script("test").split("\nset -e\n")[0]
    assert install.CONFIG in first
    script = first.replace(install.CONFIG, str(settings))
    proc = subprocess.run(
        ["/bin/bash", "-c", script], env={"PATH": "/nonexistent"}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lease, problem = fencing.guard_lease(proc.stdout)
    assert lease == fencing.GuardLease(3.0, 1.0), problem
    absent = subprocess.run(["/bin/bash", "-c", first.replace(install.CONFIG, "/nonexistent")],
                            env={}, capture_output=True, text=True)  # fmt: skip
    assert absent.stdout == f"{fencing.NO_GUARD}\n"
    assert fencing.guard_lease(absent.stdout)[0] is None
