"""The controller cluster against real etcd members on loopback (no mocks).

Election, a leader SIGKILLed, a leader that lost its lease refusing its next step,
revision-checked writes, observations as votes, and no quorum -> no action + an alert.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mxlab.campaigners import Campaigners
from mxlab.etcd_local import EtcdCluster

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.cluster.etcd import EtcdClient, TlsFiles
from orchestrator.cluster.leadership import ClusterKeys, Elector, Role
from orchestrator.cluster.member import ClusterMember
from orchestrator.cluster.requests import ClusterRequests
from orchestrator.cluster.shared_state import NotLeader, RunRecord, SharedState, StaleRevision
from orchestrator.config.cluster_section import ClusterConfig
from orchestrator.controller import switching
from orchestrator.controller.decision import Action, Outcome, decide
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import (
    ControllerState,
    Health,
    ObserverReport,
    Policy,
    Snapshot,
)
from orchestrator.controller.runner import Runner, Step
from tests.cluster.etcd_tls import make_tls

REPO = Path(__file__).resolve().parents[2]
TTL, MARGIN, INTERVAL = 2, 0.5, 0.25  # etcd's smallest lease TTL here is 2 s


def elector(etcd: EtcdCluster, cluster: str, name: str) -> Elector:
    return Elector(EtcdClient(etcd.endpoints), ClusterKeys(cluster), name, TTL, MARGIN)


def test_exactly_one_of_three_controllers_leads(etcd1: EtcdCluster, cluster_name: str) -> None:
    electors = [elector(etcd1, cluster_name, f"ctl{i}") for i in range(3)]
    for _ in range(3):
        for e in electors:
            e.tick()
    verdicts = [e.verdict() for e in electors]
    leaders = [e.name for e, v in zip(electors, verdicts, strict=True) if v.may_act]
    assert len(leaders) == 1
    # Every controller agrees on who leads and in which term.
    assert {(e.view.holder, e.view.term) for e in electors} == {(leaders[0], verdicts[0].term)}
    followers = [v for v in verdicts if not v.may_act]
    assert all(v.role is Role.FOLLOWER and f"{leaders[0]} leads" in v.reason for v in followers)


def test_leader_sigkilled_another_leads_within_ttl_and_interval(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    group = Campaigners(tmp_path, etcd1.endpoints[0], cluster_name, TTL, MARGIN, INTERVAL)
    try:
        for name in ("ctl1", "ctl2", "ctl3"):
            group.start(name)
        took = group.takeover()
        print(f"takeover after leader SIGKILL: {took.seconds:.2f} s (TTL {TTL} s)")
        assert took.new_leader != took.old_leader
        assert took.new_term > took.old_term
        # Nobody else acted in the old leader's term: never two leaders acting at once.
        assert took.overlap == []
        # The bound issue 15 sets (TTL + interval), plus etcd's lease-expiry sweep (every
        # 500 ms) and 0.5 s for a tick on a loaded machine; bench/cluster_takeover.py has figures.
        assert took.seconds <= TTL + INTERVAL + 1.0, f"takeover {took.seconds:.2f} s"
        # The survivors agree on the new leader.
        assert group.leader() == (took.new_leader, took.new_term)
    finally:
        group.close()


def member(etcd: EtcdCluster, cluster: str, name: str, folder: Path) -> ClusterMember:
    config = ClusterConfig(
        cluster, name, ("ctl1", "ctl2"), tuple(etcd.endpoints), None, TTL, MARGIN
    )
    return ClusterMember(config, Journal(folder / f"{name}.db"))


def _leader_dies(etcd: EtcdCluster, leader: ClusterMember, other: ClusterMember) -> None:
    """The leader's process dies, and its lease with it: `other` leads within seconds."""
    assert leader.elector.lease is not None
    EtcdClient(etcd.endpoints).revoke(leader.elector.lease)
    deadline = time.monotonic() + 10
    while not other.check().may_act and time.monotonic() < deadline:
        time.sleep(INTERVAL)
    assert other.verdict is not None and other.verdict.may_act


class Crash(BaseException):
    """Stands for the leader's process dying (SIGKILL) in the middle of a step."""


def _failover_steps(calls: list[str], between: Callable[[], None]) -> list[Step]:
    def fence() -> dict[str, Any]:
        calls.append("fence-old-primary")
        between()
        return {}

    def dns() -> dict[str, Any]:
        calls.append("rewrite-dns")
        return {}

    def verify() -> dict[str, Any]:
        calls.append("verify-dns")
        return {}

    return [Step("fence-old-primary", fence, "fence mx1"), Step("rewrite-dns", dns, "mx2 in MX"),
            Step("verify-dns", verify, "every NS serves mx2")]  # fmt: skip


def test_leader_whose_lease_was_lost_refuses_its_next_step(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    a = member(etcd1, cluster_name, "ctl1", tmp_path)
    b = elector(etcd1, cluster_name, "ctl2")
    assert a.check().may_act
    term_a = a.verdict.term if a.verdict else None

    def lose_lease_and_be_replaced() -> None:
        # What etcd does to a leader that stopped renewing: its lease (and key) go; another
        # controller wins a new term.
        assert a.elector.lease is not None
        EtcdClient(etcd1.endpoints).revoke(a.elector.lease)
        b.tick()
        assert b.verdict().may_act

    calls: list[str] = []
    steps = _failover_steps(calls, lose_lease_and_be_replaced)
    result = Runner(a.journal, SYSTEM_CLOCK, a).execute("run-1", "failover", "mx1", "mx2", steps)
    assert calls == ["fence-old-primary"]  # the DNS rewrite never ran
    assert (result.status, result.failed_step, result.refused) == ("aborted", "rewrite-dns", True)
    assert f"ctl2 leads (term {b.view.term})" in (result.error or "")
    done = [e for e in a.journal.events(run_id="run-1") if e.status == "done"]
    assert [e.evidence["term"] for e in done] == [term_a]  # each action carries its term
    assert b.view.term is not None and term_a is not None and b.view.term > term_a


def test_leader_cut_off_from_etcd_refuses_its_next_step(tmp_path: Path) -> None:
    etcd = EtcdCluster(tmp_path / "etcd", 1)
    try:
        etcd.start_all()
        a = member(etcd, "cut", "ctl1", tmp_path)
        assert a.check().may_act
        calls: list[str] = []
        steps = _failover_steps(calls, lambda: etcd.stop(0))
        result = Runner(a.journal, SYSTEM_CLOCK, a).execute("r", "failover", "mx1", "mx2", steps)
        assert calls == ["fence-old-primary"]
        assert result.failed_step == "rewrite-dns"
        assert "etcd has no quorum for us" in (result.error or "")
    finally:
        etcd.close()


def test_a_planned_move_cut_by_its_leaders_death_is_not_adopted_as_a_failover(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    """A switchback's leader dies after DNS moved: the next leader must not finish it as a
    failover (that fences the backup MX and skips hold, converge-after and the TTLs). It
    sees a planned run under way (its intent started, not finished: DNS is the move's),
    and does not adopt the record; the intent, still pending, runs again from its start."""
    a, b = (
        member(etcd1, cluster_name, "ctl1", tmp_path),
        member(etcd1, cluster_name, "ctl2", tmp_path),
    )
    assert a.check().may_act and not b.check().may_act
    requests = ClusterRequests(a.client, ClusterKeys(cluster_name), a.journal)
    requests.put(switching.INTENT_KEY, '{"id": "i1", "kind": "switchback", "to": "mx1"}')
    requests.put(switching.STARTED_KEY, "i1")
    steps = [Step(n, dict, n) for n in ("lower-ttl", "wait-old-ttl", "rewrite-dns")]
    done = Runner(a.journal, SYSTEM_CLOCK, a).execute("switchback-1", "switchback", "mx2",
                                                      "mx1", steps)  # fmt: skip
    assert done.status == "done"
    _leader_dies(etcd1, a, b)
    assert b.adopt_run(b.journal, "mx1") is None
    seen_by_b = ClusterRequests(b.client, ClusterKeys(cluster_name), b.journal)
    assert switching.under_way(b.journal, seen_by_b)  # reconcile leaves DNS to the move
    seen_by_b.put(switching.STARTED_KEY, "")  # once the move is over...
    assert not switching.under_way(b.journal, seen_by_b)  # ...DNS is reconciled again
    a.close()
    b.close()


def test_leader_killed_between_fence_and_dns_the_next_leader_finishes_once(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    a, b = (
        member(etcd1, cluster_name, "ctl1", tmp_path),
        member(etcd1, cluster_name, "ctl2", tmp_path),
    )
    assert a.check().may_act and not b.check().may_act
    calls: list[str] = []

    def die() -> dict[str, Any]:
        raise Crash  # the process dies as the DNS rewrite starts, before it changes anything

    steps = _failover_steps(calls, lambda: None)
    steps[1] = Step("rewrite-dns", die, "mx2 in MX")
    with pytest.raises(Crash):
        Runner(a.journal, SYSTEM_CLOCK, a).execute("run-9", "failover", "mx1", "mx2", steps)
    assert calls == ["fence-old-primary"]
    _leader_dies(etcd1, a, b)
    # The new leader takes the run over from the cluster's record and goes on at the
    # next step: the fence is not done again, the DNS change is made once.
    assert b.adopt_run(b.journal, "mx2") == "run-9"
    resumed = Runner(b.journal, SYSTEM_CLOCK, b).execute(
        "run-9", "failover", "mx1", "mx2", _failover_steps(calls, lambda: None)
    )
    assert resumed.status == "done" and resumed.steps_skipped == ["fence-old-primary"]
    assert calls == ["fence-old-primary", "rewrite-dns", "verify-dns"]
    record = b.shared.read_run().value
    assert record.completed == ("fence-old-primary", "rewrite-dns", "verify-dns")
    terms = {e.subject: e.evidence.get("term") for e in b.journal.events(run_id="run-9")
             if e.status == "done"}  # fmt: skip
    assert terms["rewrite-dns"] == b.verdict.term != terms["fence-old-primary"]


def test_revision_checked_writes_fail_on_conflict(etcd1: EtcdCluster, cluster_name: str) -> None:
    a, b = elector(etcd1, cluster_name, "ctl1"), elector(etcd1, cluster_name, "ctl2")
    a.tick()
    term_a = a.view.term
    assert term_a is not None and a.verdict().may_act
    shared = SharedState(EtcdClient(etcd1.endpoints), ClusterKeys(cluster_name))
    assert shared.read_state().revision == 0  # absent
    state = ControllerState("mx1", "mx2", fenced=frozenset({"mx3"}), paused=True)
    rev = shared.write_state(state, 0, term_a)
    read = shared.read_state()
    assert (read.value, read.revision) == (state, rev)
    # A second writer that read before the first wrote loses, and learns the revision now.
    with pytest.raises(StaleRevision) as stale:
        shared.write_state(ControllerState("mx2", "mx1"), 0, term_a)
    assert stale.value.current_revision == rev
    assert shared.read_state().value == state
    # The run in progress, with its completed steps, the same way.
    run = RunRecord("run-1", "failover", "mx1", "mx2", term_a, ("check-new-primary",))
    run_rev = shared.write_run(run, 0, term_a)
    shared.write_run(RunRecord(**{**run.__dict__, "completed": (*run.completed, "fence")}),
                     run_rev, term_a)  # fmt: skip
    assert shared.read_run().value.completed == ("check-new-primary", "fence")
    # A deposed leader writes nothing, even with the right revision.
    assert a.lease is not None
    EtcdClient(etcd1.endpoints).revoke(a.lease)
    b.tick()
    with pytest.raises(NotLeader, match=f"term {term_a} is over"):
        shared.write_state(ControllerState("mx2", "mx1"), rev, term_a)
    assert shared.read_state().value == state


def test_followers_observations_are_the_leaders_votes(
    etcd1: EtcdCluster, cluster_name: str
) -> None:
    electors = {n: elector(etcd1, cluster_name, n) for n in ("ctl1", "ctl2", "ctl3")}
    for e in electors.values():
        e.tick()
    shared = SharedState(EtcdClient(etcd1.endpoints), ClusterKeys(cluster_name))
    now = datetime.now(UTC)
    for name, mx1 in (("ctl1", Health.FAILED), ("ctl2", Health.FAILED), ("ctl3", Health.UP)):
        lease = electors[name].lease
        assert lease is not None
        report = ObserverReport(name, {"mx1": mx1, "mx2": Health.UP}, replication_lag_s=2.0)
        shared.publish_observation(report, now, lease)
    votes = shared.observations(now, timedelta(seconds=10))
    assert [r.observer for r in votes] == ["ctl1", "ctl2", "ctl3"]
    state = ControllerState("mx1", "mx2", failed_cycles={"mx1": 2})
    decision = decide(Snapshot(now, votes), state, Policy(failure_threshold=3, observers=3), now)
    assert (decision.outcome, decision.action) == (Outcome.PRIMARY_DEAD, Action.FAILOVER)
    assert "by 2 of 3" in decision.reason or "ctl1" in decision.reason
    # A controller that dies takes its vote with it (the observation is on its lease).
    assert electors["ctl3"].lease is not None
    EtcdClient(etcd1.endpoints).revoke(electors["ctl3"].lease)
    assert [r.observer for r in shared.observations(now, timedelta(seconds=10))] == [
        "ctl1",
        "ctl2",
    ]


def test_no_etcd_quorum_no_action(etcd3: EtcdCluster, tmp_path: Path) -> None:
    """Two of three members stopped: the last one cannot commit, so nobody may act (the
    alert this raises in `mxctl watch` is tested in test_watch_cluster.py)."""
    config = ClusterConfig("q", "ctl1", ("ctl1",), tuple(etcd3.endpoints), None, TTL, MARGIN)
    journal = Journal(tmp_path / "journal.db")
    member = ClusterMember(config, journal)
    assert member.check().may_act
    etcd3.stop(1)
    etcd3.stop(2)
    verdicts = [member.check() for _ in range(3)]
    assert [v.may_act for v in verdicts] == [False] * 3
    assert {v.role for v in verdicts} == {Role.NO_ETCD}
    assert all("etcd has no quorum for us" in v.reason for v in verdicts)
    roles = [(e.subject, e.reason) for e in journal.events() if e.kind == "cluster"]
    assert [r for r, _ in roles] == ["leader", "no-etcd"]  # each change journaled once
    # Quorum back: the controller leads again.
    etcd3.start(1)
    etcd3.start(2)
    etcd3.wait_healthy()
    deadline = time.monotonic() + 15
    verdict = member.check()
    while not verdict.may_act and time.monotonic() < deadline:
        time.sleep(INTERVAL)
        verdict = member.check()
    assert verdict.may_act, verdict.reason


def test_election_over_tls_with_client_certificates(tmp_path: Path) -> None:
    server_tls, client_tls = make_tls(tmp_path / "tls")
    etcd = EtcdCluster(tmp_path / "etcd", 1, server_tls, client_tls)
    try:
        etcd.start_all()
        assert etcd.endpoints[0].startswith("https://")
        config = ClusterConfig(
            "tls", "ctl1", ("ctl1",), tuple(etcd.endpoints), client_tls, TTL, MARGIN
        )
        member = ClusterMember(config, Journal(tmp_path / "journal.db"))
        assert member.check().may_act
        # A client certificate from another CA gets nowhere: no leadership, no action.
        _, stranger = make_tls(tmp_path / "other-ca")
        bare = TlsFiles(client_tls.ca, stranger.cert, stranger.key)
        intruder = Elector(
            EtcdClient(etcd.endpoints, tls=bare), ClusterKeys("tls"), "x", TTL, MARGIN
        )
        intruder.tick()
        assert intruder.verdict().role is Role.NO_ETCD
    finally:
        etcd.close()


def test_a_member_that_stopped_answering_is_tried_once_not_on_every_call(
    etcd1: EtcdCluster,
) -> None:
    # A "member" that accepts connections and never answers, as one cut off by a partition
    # looks (its packets dropped): each call that tries it first waits out the timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent.settimeout(0.1)
    address = silent.getsockname()
    client = EtcdClient([f"http://127.0.0.1:{address[1]}", etcd1.endpoints[0]], timeout=0.5)
    accepted = []
    try:
        for _ in range(3):
            client.get("/mxctl/sticky-test")
            with contextlib.suppress(TimeoutError):
                while True:
                    accepted.append(silent.accept()[0])
        # The first call tried the silent member and fell back; the next two went
        # straight to the member that answered.
        assert len(accepted) == 1
    finally:
        client.close()
        for conn in accepted:
            conn.close()
        silent.close()


class LeaseExpiresAfterRenewal(EtcdClient):
    """A real etcd client whose lease is gone right after a renewal, as when it expires
    between the keepalive and the campaign (a slow or stalled cycle): the timing forced,
    etcd's answer its own."""

    expire_next = False

    def keepalive(self, lease: int) -> int:
        left = super().keepalive(lease)
        if self.expire_next:
            self.expire_next = False
            self.revoke(lease)
        return left


def test_a_lease_gone_between_renewal_and_campaign_ends_the_term_not_the_cycle(
    etcd1: EtcdCluster, cluster_name: str
) -> None:
    client = LeaseExpiresAfterRenewal(etcd1.endpoints)
    elector = Elector(client, ClusterKeys(cluster_name), "ctl1", TTL, MARGIN)
    try:
        first = elector.tick()
        assert elector.verdict().may_act and first.my_term
        client.expire_next = True
        lost = elector.tick()  # etcd: "requested lease not found" at the campaign
        assert lost.etcd_reachable and lost.my_term is None and elector.lease is None
        assert not elector.verdict().may_act
        again = elector.tick()  # a new lease, a new term
        assert elector.verdict().may_act and again.my_term and again.my_term > first.my_term
    finally:
        elector.resign()
        client.close()


def test_a_planned_run_refused_by_a_follower_leaves_no_run_mark(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    """A controller that does not lead (another member holds the key) is refused its
    planned run at the first step: the intent stays pending in the cluster's store, and its
    own run mark is cleared, or it would never reconcile DNS again once it leads."""
    from orchestrator.config import parse_config
    from orchestrator.controller.model import ControllerState
    from orchestrator.controller.planned import PlannedMove
    from tests.controller.test_config import DNS

    a, b = (
        member(etcd1, cluster_name, "ctl1", tmp_path),
        member(etcd1, cluster_name, "ctl2", tmp_path),
    )
    assert a.check().may_act and not b.check().may_act
    config = parse_config(DNS, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    store = ClusterRequests(b.client, ClusterKeys(cluster_name), b.journal)
    state, planned = ControllerState("mx1", "mx2"), PlannedMove("switchover", "mx2")
    now = datetime.now(UTC)
    intent_id = switching.request(store, planned, now, "op", now, state, 3600)
    result, after = switching.execute(config, b.journal, SYSTEM_CLOCK, planned, state,
                                      lambda s: None, intent_id, b, store)  # fmt: skip
    assert result.refused and result.failed_step == "check-new-primary" and after == state
    assert b.journal.get(switching.RUN_KEY) == ""
    found = switching.pending(store)
    assert found is not None and found[0] == intent_id
    a.close()
    b.close()
