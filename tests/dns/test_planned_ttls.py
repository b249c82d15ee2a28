"""A planned move started again from its first step (its controller crashed, or a cluster
leader died and the next one runs the move again) after it had lowered the TTLs: the
usual TTLs still come back at the end, not the lowered ones, and the old TTL waited out
is the usual one. On the real BIND pair, with the controller's own planned steps."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import parse_config
from orchestrator.controller.journal import Journal
from orchestrator.controller.planned import PlannedSteps
from orchestrator.controller.runner import Runner, Step
from tests.fakes import FakeClock

from .conftest import ENVIRON, ProviderEnv

MX1 = "mx1.example.test"
LOW_TTL = 5


def test_a_move_started_again_restores_the_usual_ttls(
    bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    text = bind_setup.config_text + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n"
    config = parse_config(text, Path("test.toml"), ENVIRON)
    provider = bind_setup.provider()
    served = {(r.name, r.rtype): provider.read(r.name, r.rtype) for r in config.dns.records}
    usual = {key: rr.ttl for key, rr in served.items() if rr.exists}
    assert usual and all(ttl > LOW_TTL for ttl in usual.values())
    journal, clock = Journal(tmp_path / "journal.db"), FakeClock()

    first = PlannedSteps(config, clock, journal, "run-1")
    done = Runner(journal, clock).execute(
        "run-1", "switchback", "mx2.example.test", MX1, [Step("lower-ttl", first.lower_ttl, "")]
    )
    assert done.status == "done"
    lowered = {k: provider.read(*k).ttl for k in usual}
    assert set(lowered.values()) == {LOW_TTL}
    # The controller is gone; the move is run again, from its first step, as a new run.
    again = PlannedSteps(config, clock, journal, "run-2")
    steps = [
        Step("lower-ttl", again.lower_ttl, ""),
        Step("wait-old-ttl", again.wait_old_ttl, ""),
        Step("restore-ttl", lambda: again.rewrite_to(MX1, None), ""),
    ]
    rerun = Runner(journal, clock).execute("run-2", "switchback", "mx2.example.test", MX1, steps)
    assert rerun.status == "done", rerun.error
    assert {k: provider.read(*k).ttl for k in usual} == usual
    waited = next(
        e.evidence
        for e in journal.events(run_id="run-2")
        if e.subject == "wait-old-ttl" and e.status == "done"
    )
    assert waited["old_ttl"] == max(usual.values())  # a cache may hold the usual TTL
    first.close()
    again.close()
