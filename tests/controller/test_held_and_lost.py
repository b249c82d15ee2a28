"""What a pause holds back and which observers are lost: alerts from tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orchestrator.controller.alerts import (
    PAUSED_REPAIR_ALERT,
    ReplicationFacts,
    current_alerts,
    held_by_pause,
)
from orchestrator.controller.decision import decide
from orchestrator.controller.model import ControllerState, Health, ObserverReport, Policy, Snapshot
from orchestrator.controller.observers import ObserverWatch, Standing, lost_alerts, standings

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
UP, FAILED, UNKNOWN = Health.UP, Health.FAILED, Health.UNKNOWN
BASE = ControllerState("mx1", "mx2")
POLICY = Policy(failure_threshold=3, observers=3)
NO_REPLICATION = ReplicationFacts(None, None)


def snap(*views: tuple[str, Health, str]) -> Snapshot:
    """One report per observer: (name, its view of the primary mx1, why it abstains)."""
    reports = tuple(
        ObserverReport(name, {} if p is UNKNOWN else {"mx1": p, "mx2": UP}, note=note)
        for name, p, note in views
    )
    return Snapshot(NOW, reports)


ALL_DEAD = snap(("controller", FAILED, ""), ("witness-a", FAILED, ""), ("witness-b", FAILED, ""))
ALL_UP = snap(("controller", UP, ""), ("witness-a", UP, ""), ("witness-b", UP, ""))

PAUSE_CASES = [
    # (id, snapshot, cycles, state, alert key expected or None, words in its reason)
    ("paused, primary dead: alert says so", ALL_DEAD, 3, replace(BASE, paused=True),
     "paused-failover-held", "primary mx1 dead for 3 cycles by 3 of 3"),
    ("paused, failover unfinished: alert says it waits", ALL_UP, 1,
     replace(BASE, paused=True, failover_in_progress="mx2"), "paused-failover-held",
     "failover to mx2 is unfinished, but automation is paused"),
    ("paused, primary failing below the threshold: nothing held yet", ALL_DEAD, 2,
     replace(BASE, paused=True), None, ""),
    ("paused, all healthy: no alert", ALL_UP, 3, replace(BASE, paused=True), None, ""),
    ("not paused, primary dead: a failover, no pause alert", ALL_DEAD, 3, BASE, None, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("snapshot", "cycles", "state", "key", "words"),
    [c[1:] for c in PAUSE_CASES],
    ids=[c[0] for c in PAUSE_CASES],
)
def test_what_a_pause_holds_back_is_an_alert(
    snapshot: Snapshot, cycles: int, state: ControllerState, key: str | None, words: str
) -> None:
    decision = decide(snapshot, state, POLICY, NOW)
    for _ in range(cycles - 1):
        decision = decide(snapshot, decision.state, POLICY, NOW)
    found = current_alerts(decision, decision.state, NO_REPLICATION, 60.0, {})
    paused = {k: a for k, a in found.items() if k.startswith("paused")}
    if key is None:
        assert paused == {}
    else:
        assert list(paused) == [key] and words in paused[key].reason, paused


HELD_CASES = [
    ("nothing held: no alert", (), {}),
    ("one repair held", ("mx1 is fenced but answers a client port: fenced again",),
     {PAUSED_REPAIR_ALERT: "automation is paused: held back: mx1 is fenced but answers a "
                           "client port: fenced again"}),
    ("two held, both said", ("a", "b"), {PAUSED_REPAIR_ALERT: "automation is paused: held "
                                                              "back: a; b"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("held", "alerts"), [c[1:] for c in HELD_CASES], ids=[c[0] for c in HELD_CASES]
)
def test_repairs_held_by_a_pause_are_one_alert(
    held: tuple[str, ...], alerts: dict[str, str]
) -> None:
    assert held_by_pause(held) == alerts


W_A, W_B = "witness-a", "witness-b"
LOST_CASES = [
    # (id, snapshot, configured, cycles abstained before, alerts {key: words})
    ("all vote: nothing", snap(("controller", FAILED, ""), (W_A, UP, ""), (W_B, UP, "")), 3,
     {}, {}),
    ("a witness abstains 1 cycle: not lost yet", snap(("controller", UP, ""), (W_A, UP, ""),
     (W_B, UNKNOWN, "no report in time")), 3, {}, {}),
    ("a witness abstains 3 cycles: lost, the majority still votes",
     snap(("controller", UP, ""), (W_A, UP, ""), (W_B, UNKNOWN, "no report in time")), 3,
     {W_B: 2}, {"observer-lost:witness-b": "observer lost: witness-b: no report in time"}),
    ("both witnesses lost: controller and standby decide alone",
     snap(("controller", UP, ""), (W_A, UNKNOWN, "no report in time"),
          (W_B, UNKNOWN, "no report in time"), ("standby:mx2", UP, "")), 4,
     {W_A: 5, W_B: 2},
     {"observer-lost:witness-a": "only 2 of 4 configured observers vote (controller, "
                                 "standby:mx2), fewer than their majority of 3",
      "observer-lost:witness-b": "observer lost: witness-b: no report in time"}),
    ("a witness that votes again is no longer lost", snap(("controller", UP, ""),
     (W_A, UP, ""), (W_B, FAILED, "")), 3, {W_B: 9}, {}),
    ("an observer that sends no report at all is lost too",
     snap(("controller", UP, ""), (W_A, UP, "")), 3, {"1 unreported": 2},
     {"observer-lost:1 unreported": "configured, but sent no report at all"}),
    ("abstains with no reason given: says it has no view", snap(("controller", UP, ""),
     (W_A, UP, ""), (W_B, UNKNOWN, "")), 3, {W_B: 3},
     {"observer-lost:witness-b": "no fresh view of mx1"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("snapshot", "configured", "before", "alerts"),
    [c[1:] for c in LOST_CASES],
    ids=[c[0] for c in LOST_CASES],
)
def test_a_lost_observer_is_an_alert(
    snapshot: Snapshot, configured: int, before: dict[str, int], alerts: dict[str, str]
) -> None:
    found = lost_alerts(standings(snapshot, "mx1", configured, before), configured, 3)
    assert sorted(found) == sorted(alerts), found
    for key, words in alerts.items():
        assert words in found[key], found[key]


def test_abstentions_are_counted_across_cycles_and_reset_by_a_vote() -> None:
    watch = ObserverWatch(lost_after=3)
    silent = snap(("controller", UP, ""), (W_A, UNKNOWN, "no report in time"))
    assert [watch.alerts(silent, "mx1", 2) for _ in range(2)] == [{}, {}]
    assert list(watch.alerts(silent, "mx1", 2)) == ["observer-lost:witness-a"]
    assert watch.last == [Standing("controller", True, "", 0),
                          Standing(W_A, False, "no report in time", 3)]  # fmt: skip
    assert watch.alerts(snap(("controller", UP, ""), (W_A, UP, "")), "mx1", 2) == {}
    assert watch.alerts(silent, "mx1", 2) == {}  # one cycle silent again: counted afresh
