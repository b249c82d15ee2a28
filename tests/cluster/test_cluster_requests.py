"""Operators' requests in a controller cluster, on real etcd: `mxctl pause|resume|ack|
cancel|switchover` run with a follower's config reach the leader through etcd, and the
command reads the leader's outcome. Mail hosts refuse every connection
(tests/controller/test_loop_local.py's world: no lab needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from mxlab.etcd_local import EtcdCluster

from orchestrator.cli.main import main
from orchestrator.controller import switching
from orchestrator.controller.loop import Controller
from orchestrator.controller.planned import PlannedMove
from tests.cluster.test_watch_cluster import TSIG, cluster_controller


@pytest.fixture
def pair_of_controllers(
    tmp_path: Path, cluster_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Controller, Controller, Path]]:
    """ctl1 leading, ctl2 following, on one real etcd member; ctl2's config file."""
    monkeypatch.setenv("TSIG", TSIG)
    etcd = EtcdCluster(tmp_path / "etcd", 1)
    try:
        etcd.start_all()
        leader, _ = cluster_controller(tmp_path, etcd, cluster_name, "ctl1")
        follower, follower_config = cluster_controller(tmp_path, etcd, cluster_name, "ctl2")
        leader.cycle()
        assert follower.cycle().startswith("follower: ctl1 leads")
        yield leader, follower, follower_config
    finally:
        etcd.close()


def test_pause_and_resume_given_on_a_follower_reach_the_leader(
    pair_of_controllers: tuple[Controller, Controller, Path],
) -> None:
    leader, follower, config = pair_of_controllers
    assert leader.load_state().paused is False
    assert main(["pause", "--config", str(config)]) == 0
    leader.cycle()
    assert leader.load_state().paused is True  # the leader's state, written in its term
    assert [e.subject for e in follower.journal.events() if e.kind == "operator"] == ["paused"]
    assert main(["resume", "--config", str(config)]) == 0
    leader.cycle()
    assert leader.load_state().paused is False


def test_an_ack_given_on_a_follower_is_taken_once_by_the_leader(
    pair_of_controllers: tuple[Controller, Controller, Path],
) -> None:
    leader, _, config = pair_of_controllers
    assert leader.operator.take_ack() is False
    assert main(["ack", "--config", str(config)]) == 0
    assert leader.operator.take_ack() is True
    assert leader.operator.take_ack() is False  # consumed


def test_an_intent_made_on_a_follower_is_pending_for_the_leader_and_cancel_reaches_it(
    pair_of_controllers: tuple[Controller, Controller, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    leader, follower, config = pair_of_controllers
    state = leader.load_state()
    at = leader.clock.now() + timedelta(hours=1)  # later: the leader leaves it waiting
    planned = PlannedMove("switchover", "mx2.example.test")
    intent_id = switching.request(
        follower.requests, planned, at, "op", leader.clock.now(), state, 7200.0
    )
    found = switching.pending(leader.requests)
    assert found is not None and found[0] == intent_id and found[1].to == "mx2.example.test"
    # Once the leader has started carrying it out, no host may cancel it half-way.
    leader.requests.put(switching.STARTED_KEY, intent_id)
    assert main(["cancel", "--config", str(config)]) == 2
    assert "has started" in capsys.readouterr().err
    leader.requests.put(switching.STARTED_KEY, "")
    assert main(["cancel", "--config", str(config)]) == 0
    assert switching.pending(leader.requests) is None
    ended = switching.result(leader.requests, intent_id)
    assert ended is not None and ended["status"] == "cancelled"


def test_switchover_on_a_follower_is_handed_to_the_leader_which_judges_it(
    pair_of_controllers: tuple[Controller, Controller, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command never acts itself in a cluster: the leader's loop takes the intent,
    drops it (mx2 fails its probes here: nothing answers) and the command reports that."""
    leader, follower, config = pair_of_controllers
    leader.cycle()  # mx2 has failed a cycle: a switchover onto it is dropped
    stop = threading.Event()

    def lead() -> None:
        while not stop.is_set():
            leader.cycle()
            stop.wait(0.3)

    loop = threading.Thread(target=lead, daemon=True)
    loop.start()
    try:
        code = main(["switchover", "--to", "mx2", "--config", str(config)])
    finally:
        stop.set()
        loop.join(timeout=30)
    out = capsys.readouterr().out
    assert code == 1, out
    assert "handed to the controller cluster" in out and "dropped" in out, out
    assert "fails its probes" in out, out
    dropped = [e for e in leader.journal.events() if e.kind == "intent"]
    assert [e.status for e in dropped] == ["dropped"], dropped
    # The follower ran no step of any run: only the leader acts.
    assert follower.journal.runs() == []
    assert [e for e in follower.journal.events() if e.kind == "step"] == []
