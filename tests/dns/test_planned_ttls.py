"""A planned move started again from its first step (its controller crashed, or a cluster
leader died and the next one runs the move again) after it had lowered the TTLs: the
usual TTLs still come back at the end, not the lowered ones, and the old TTL waited out
is the usual one. On the real BIND pair, with the controller's own planned steps."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import parse_config
from orchestrator.controller.failover import Move
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState
from orchestrator.controller.planned import PlannedSteps
from orchestrator.controller.runner import Evidence, Runner, Step, StepFailed
from orchestrator.controller.switching import undo_stopped
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


def test_a_move_stopped_before_its_rewrite_gets_the_usual_ttls_back_on_the_old_records(
    bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    text = bind_setup.config_text + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n"
    config = parse_config(text, Path("test.toml"), ENVIRON)
    provider = bind_setup.provider()
    before = {(r.name, r.rtype): provider.read(r.name, r.rtype) for r in config.dns.records}
    journal, clock = Journal(tmp_path / "journal.db"), FakeClock()
    steps = PlannedSteps(config, clock, journal, "run-1")

    def target_died() -> Evidence:
        raise StepFailed("mx2.example.test failed for 3 cycles (before DNS moved)")

    result = Runner(journal, clock).execute(
        "run-1",
        "switchover",
        MX1,
        "mx2.example.test",
        [Step("lower-ttl", steps.lower_ttl, ""), Step("wait-old-ttl", target_died, "")],
    )
    assert result.status == "aborted"
    assert {provider.read(*k).ttl for k, rr in before.items() if rr.exists} == {LOW_TTL}
    state = ControllerState(MX1, "mx2.example.test", {"mx2.example.test": 3})
    after, why = undo_stopped(steps, move_for_test(), state, result)
    assert after == state  # the old primary stays, failure counts and all
    assert "TTLs are back" in why
    assert {k: provider.read(*k) for k in before} == before  # data and TTLs as they were
    undo = [e for e in journal.events(run_id="run-1") if e.subject == "undo-restore-ttl"]
    assert [e.status for e in undo] == ["done"]
    steps.close()


def test_a_move_stopped_after_its_rewrite_hands_the_pair_over_as_dns_has_it(
    tmp_path: Path,
) -> None:
    from tests.controller.test_config import DNS

    config = parse_config(DNS, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    journal, clock = Journal(tmp_path / "journal.db"), FakeClock()
    steps = PlannedSteps(config, clock, journal, "run-1")
    done: list[Step] = [Step(n, dict, "") for n in ("lower-ttl", "wait-old-ttl", "rewrite-dns")]

    def target_died() -> Evidence:
        raise StepFailed("mx2.example.test failed the last 1 cycle(s)")

    result = Runner(journal, clock).execute(
        "run-1", "switchover", MX1, "mx2.example.test", [*done, Step("hold", target_died, "")]
    )
    blocked = clock.now()
    state = ControllerState(MX1, "mx2.example.test", {"mx2.example.test": 1},
                            blocked_until=blocked)  # fmt: skip
    after, why = undo_stopped(steps, move_for_test(), state, result)
    assert (after.primary, after.standby) == ("mx2.example.test", MX1)
    assert after.failures("mx2.example.test") == 1  # the loop goes on counting: failback
    assert after.blocked_until is None  # the failback is the move's undo, not a flap
    assert after.fenced == frozenset()
    assert "fails over back to mx1.example.test" in why


def move_for_test() -> Move:
    return Move("switchover", MX1, "mx2.example.test", "test", False)
