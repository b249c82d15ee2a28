"""The step runner against a real SQLite journal: order, abort, crash and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.controller.journal import Journal
from orchestrator.controller.runner import Runner, Step, StepFailed
from tests.fakes import FakeClock


class Crash(BaseException):
    """Stands for the process dying (SIGKILL) in the middle of a step."""


def test_steps_run_in_order_and_are_journaled_before_and_after(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    calls: list[str] = []
    steps = [
        Step(name, lambda name=name: calls.append(name) or {"step": name}, f"do {name}")
        for name in ("pre-hooks", "fence", "rewrite-dns", "verify")
    ]
    result = Runner(journal, FakeClock()).execute("r1", "failover", "mx1", "mx2", steps)
    assert result.status == "done" and calls == ["pre-hooks", "fence", "rewrite-dns", "verify"]
    statuses = [(e.subject, e.status) for e in journal.events(run_id="r1")]
    assert statuses == [(n, s) for n in calls for s in ("started", "done")]
    assert journal.events(run_id="r1")[-1].evidence == {"step": "verify"}
    assert journal.runs()[0].status == "done"


def test_a_failing_pre_hook_aborts_before_anything_else(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    calls: list[str] = []

    def hook() -> dict[str, object]:
        raise StepFailed("pre-hook exited 3", {"exit": 3})

    steps = [
        Step("pre-hooks", hook, "run pre-hooks"),
        Step("rewrite-dns", lambda: calls.append("dns") or {}, "rewrite"),
    ]
    result = Runner(journal, FakeClock()).execute("r2", "failover", "mx1", "mx2", steps)
    assert result.status == "aborted" and result.failed_step == "pre-hooks"
    assert calls == []
    failed = journal.events(run_id="r2")[-1]
    assert failed.status == "failed" and failed.evidence == {"exit": 3}
    assert journal.unfinished_run() is None


def test_a_crash_mid_run_resumes_and_each_step_acts_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    counts = {"fence": 0, "rewrite-dns": 0, "verify": 0}
    crash_in_dns = {"armed": True}

    def rewrite() -> dict[str, object]:
        if crash_in_dns["armed"]:
            crash_in_dns["armed"] = False
            raise Crash()  # killed after the step was journaled as started, before it acted
        counts["rewrite-dns"] += 1
        return {}

    def make_steps() -> list[Step]:
        def count(name: str) -> dict[str, object]:
            counts[name] += 1
            return {}

        return [
            Step("fence", lambda: count("fence"), "fence"),
            Step("rewrite-dns", rewrite, "rewrite"),
            Step("verify", lambda: count("verify"), "verify"),
        ]

    journal = Journal(path)
    with pytest.raises(Crash):
        Runner(journal, FakeClock()).execute("r3", "failover", "mx1", "mx2", make_steps())
    journal.close()
    reopened = Journal(path)  # a new controller process
    pending = reopened.unfinished_run()
    assert pending is not None and pending.run_id == "r3"
    result = Runner(reopened, FakeClock()).execute("r3", "failover", "mx1", "mx2", make_steps())
    assert result.status == "done"
    assert result.steps_skipped == ["fence"]
    assert counts == {"fence": 1, "rewrite-dns": 1, "verify": 1}


def test_a_non_critical_step_failure_is_journaled_and_the_run_goes_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")

    def notify() -> dict[str, object]:
        raise OSError("webhook unreachable")

    steps = [
        Step("notify", notify, "notify", abort_on_failure=False),
        Step("block", lambda: {"blocked": True}, "block"),
    ]
    result = Runner(journal, FakeClock()).execute("r4", "failover", "mx1", "mx2", steps)
    assert result.status == "done" and result.steps_run == ["block"]
    assert result.steps_failed == {"notify": "notify failed: webhook unreachable"}
    assert any(e.status == "failed" and "webhook" in e.reason for e in journal.events())


class Gate:
    """A controller cluster's part in a run, as the runner sees it (the real one is
    orchestrator.cluster.member.ClusterMember, tested on etcd in tests/cluster/)."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.told: list[str] = []

    def before_step(self, step: str) -> str | None:
        return None if step in self.allowed else "ctl2 leads (term 9)"

    def run_started(self, run_id: str, kind: str, from_host: str, to_host: str) -> None:
        self.told.append(f"start {run_id}")

    def step_done(self, run_id: str, step: str) -> None:
        self.told.append(f"done {step}")

    def run_finished(self, run_id: str) -> None:
        self.told.append(f"finished {run_id}")

    def evidence(self) -> dict[str, object]:
        return {"term": 8}


def test_a_gate_refusing_a_step_stops_the_run_before_it_acts(tmp_path: Path) -> None:
    """Once the gate refuses (the leader lost its lease), that step and the rest never
    run, and the run is marked refused (no roll-back by a controller that may no longer
    act); a later gate that allows resumes at the refused step."""
    journal = Journal(tmp_path / "journal.db")
    calls: list[str] = []
    steps = [
        Step(name, lambda name=name: calls.append(name) or {}, f"do {name}")
        for name in ("fence", "rewrite-dns", "verify")
    ]
    gate = Gate({"fence"})
    result = Runner(journal, FakeClock(), gate).execute("r1", "failover", "mx1", "mx2", steps)
    assert calls == ["fence"]
    assert (result.status, result.failed_step, result.refused) == ("aborted", "rewrite-dns", True)
    assert result.error == "rewrite-dns not run: ctl2 leads (term 9)"
    assert [(e.subject, e.status) for e in journal.events(run_id="r1")] == [
        ("fence", "started"), ("fence", "done"), ("rewrite-dns", "failed"),
    ]  # fmt: skip
    assert gate.told == ["start r1", "done fence", "finished r1"]  # its end too: the term unbinds
    assert journal.events(run_id="r1")[1].evidence == {"term": 8}  # each action: its term
    assert journal.events(run_id="r1")[0].evidence == {"term": 8}  # from its start
    gate.allowed.update({"rewrite-dns", "verify"})
    again = Runner(journal, FakeClock(), gate).execute("r1", "failover", "mx1", "mx2", steps)
    assert again.status == "done" and not again.refused
    assert calls == ["fence", "rewrite-dns", "verify"] and again.steps_skipped == ["fence"]
