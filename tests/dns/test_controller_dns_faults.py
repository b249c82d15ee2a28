"""The failover's DNS step against a failing provider: retried within the deadline, applied
exactly once, or aborted with the zone untouched and the run journaled as aborted.

Cloudflare here is the project's in-repo stand-in for the Cloudflare v4 API (Cloudflare
itself cannot be reached from this machine), driven by the real SDK with strict response
validation; the step under test is the controller's own (`FailoverSteps.rewrite_dns`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.controller.failover import FailoverSteps, Move
from orchestrator.controller.journal import Journal
from orchestrator.controller.runner import Runner, Step, StepFailed
from orchestrator.controller.zones import by_zone
from orchestrator.dns.plan import build_plan
from orchestrator.errors import MxctlError
from tests.fakes import FakeClock

from .conftest import ENVIRON, ProviderEnv

MOVE = Move("failover", "mx1.example.test", "mx2.example.test", "test: primary dead")


def _steps(env: ProviderEnv, clock: FakeClock, deadline: float) -> FailoverSteps:
    text = env.config_text + f"\n[policy]\nfailover_deadline = {deadline}\n"
    return FailoverSteps(parse_config(text, Path("test.toml"), ENVIRON), clock)


def _mx_records(env: ProviderEnv, zone: str) -> list[str]:
    assert env.standin is not None
    records = env.standin.zone(zone).records.values()
    return sorted(r["content"] for r in records if r["type"] == "MX")


def test_429_and_5xx_are_retried_and_the_change_lands_exactly_once(
    cf_setup: ProviderEnv,
) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("429", method="POST", path="batch", times=2, retry_after=3)
    cf_setup.standin.inject("503", method="GET", path="dns_records", times=2)
    cf_setup.standin.inject("lose_reply", method="POST", path="batch", times=1)
    clock = FakeClock()
    steps = _steps(cf_setup, clock, deadline=60)
    evidence = steps.rewrite_dns(MOVE)
    steps.close()
    assert _mx_records(cf_setup, "example.test") == ["mx2.example.test"]  # once, no duplicate
    assert _mx_records(cf_setup, "example.org") == ["mx2.example.test"]
    assert 3 in [round(s) for s in clock.slept]  # Retry-After honoured, on the injected clock
    assert evidence["requests"] > len(evidence["results"])  # the retries happened


def test_a_provider_failing_past_the_deadline_aborts_with_the_zone_untouched(
    cf_setup: ProviderEnv, tmp_path: Path
) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("503", method="POST", path="batch", times=1000)
    clock = FakeClock()
    steps = _steps(cf_setup, clock, deadline=20)
    journal = Journal(tmp_path / "journal.db")
    run = [Step("rewrite-dns", lambda: steps.rewrite_dns(MOVE), "point MX at mx2")]
    result = Runner(journal, clock).execute("r1", "failover", MOVE.old_primary,
                                            MOVE.new_primary, run)  # fmt: skip
    steps.close()
    assert result.status == "aborted" and result.failed_step == "rewrite-dns"
    assert _mx_records(cf_setup, "example.test") == ["mx1.example.test"]
    assert _mx_records(cf_setup, "example.org") == ["mx1.example.test"]
    assert 0 < sum(clock.slept) <= 20  # retried, but never past the failover's deadline
    failed = [e for e in journal.events(run_id="r1") if e.status == "failed"]
    assert failed and "rewrite-dns failed" in failed[0].reason
    with pytest.raises(MxctlError):
        _steps(cf_setup, FakeClock(), deadline=5).rewrite_dns(MOVE)


def test_a_failure_in_the_second_zone_swaps_the_first_zone_back(cf_setup: ProviderEnv) -> None:
    """Issue 11: a change spanning zones lands in all of them or in none."""
    standin = cf_setup.standin
    assert standin is not None
    clock = FakeClock()
    steps = _steps(cf_setup, clock, deadline=10)
    provider = steps.provider()
    plan = build_plan(steps.config.dns, provider, MOVE.new_primary)
    zones = [zone.rstrip(".") for zone, _ in by_zone(plan.changes, provider)]
    assert len(zones) == 2, zones
    first, second = zones
    fault = standin.inject("503", method="POST", path=f"{standin.zone(second).id}.*batch",
                           times=1000)  # fmt: skip
    mail_a_before = _records(cf_setup, "example.test", "A")
    with pytest.raises(StepFailed) as failed:
        steps.rewrite_dns(MOVE)
    steps.close()
    assert fault.times < 1000  # the second zone's write was tried (and failed)
    assert failed.value.evidence["failed_zone"].rstrip(".") == second
    assert [z.rstrip(".") for z in failed.value.evidence["swapped_back"]] == [first]
    assert failed.value.evidence["left_changed"] == {}
    assert _mx_records(cf_setup, "example.test") == ["mx1.example.test"]
    assert _mx_records(cf_setup, "example.org") == ["mx1.example.test"]
    assert _records(cf_setup, "example.test", "A") == mail_a_before
    batches = [p for m, p in standin.requests if m == "POST" and "batch" in p]
    assert any(standin.zone(first).id in p for p in batches)  # it had landed, then went back


def _records(env: ProviderEnv, zone: str, rtype: str) -> list[tuple[str, str]]:
    assert env.standin is not None
    records = env.standin.zone(zone).records.values()
    return sorted((r["name"], r["content"]) for r in records if r["type"] == rtype)
