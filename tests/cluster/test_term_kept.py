"""A step that waits longer than the lease (a planned move waits out TTLs, queues and
convergence for minutes) keeps its controller's term: the wait asks the cluster's gate
again every second, which renews the lease, on real etcd. The same wait without it ends
the term; a gate whose etcd is gone cannot keep it."""

from __future__ import annotations

import time
from pathlib import Path

from mxlab.etcd_local import EtcdCluster

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.cluster.member import ClusterMember
from orchestrator.config.cluster_section import ClusterConfig
from orchestrator.controller.journal import Journal
from orchestrator.controller.runner import TERM_RENEW_EVERY, Evidence, pause_keeping_term

TTL, MARGIN = 2, 0.5
LONGER_THAN_THE_LEASE = 2 * TTL + 0.5


def _member(etcd: EtcdCluster, cluster: str, folder: Path) -> ClusterMember:
    config = ClusterConfig(cluster, "ctl1", ("ctl1",), tuple(etcd.endpoints), None, TTL, MARGIN)
    return ClusterMember(config, Journal(folder / "journal.db"))


def test_a_wait_inside_a_step_keeps_the_term(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    member = _member(etcd1, cluster_name, tmp_path)
    first = member.check()
    assert first.may_act and first.term
    pause_keeping_term(SYSTEM_CLOCK, LONGER_THAN_THE_LEASE, member, "wait-old-ttl")
    after = member.check()
    assert after.may_act and after.term == first.term, (first, after)
    member.close()


def test_the_same_wait_without_the_gate_ends_the_term(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    member = _member(etcd1, cluster_name, tmp_path)
    first = member.check()
    assert first.may_act and first.term
    pause_keeping_term(SYSTEM_CLOCK, LONGER_THAN_THE_LEASE, None, "wait-old-ttl")
    after = member.check()  # a new lease, and (nobody else here) a new, later term
    assert after.term != first.term, (first, after)
    member.close()


class RecordingGate:
    """The member as the wait sees it, with each answer and when it came."""

    def __init__(self, member: ClusterMember) -> None:
        self.member = member
        self.answers: list[tuple[float, str | None]] = []

    def before_step(self, step: str) -> str | None:
        answer = self.member.before_step(step)
        self.answers.append((time.monotonic(), answer))
        return answer

    def run_started(self, run_id: str, kind: str, from_host: str, to_host: str) -> None:
        self.member.run_started(run_id, kind, from_host, to_host)

    def step_done(self, run_id: str, step: str) -> None:
        self.member.step_done(run_id, step)

    def run_finished(self, run_id: str) -> None:
        self.member.run_finished(run_id)

    def evidence(self) -> Evidence:
        return self.member.evidence()


def test_without_etcd_the_waits_own_checks_refuse_from_the_first(
    cluster_name: str, tmp_path: Path
) -> None:
    """The wait's checks are what would keep the term, and they cannot without etcd: a
    renewal that fails is "no action" at once (not at the lease's end), at every check of
    the wait, which still ends on time; the next step is refused."""
    etcd = EtcdCluster(tmp_path / "etcd", 1)
    try:
        etcd.start_all()
        member = _member(etcd, cluster_name, tmp_path)
        assert member.check().may_act
        etcd.stop(0)
        gate, started = RecordingGate(member), time.monotonic()
        pause_keeping_term(SYSTEM_CLOCK, LONGER_THAN_THE_LEASE, gate, "wait-old-ttl")
        assert time.monotonic() - started < LONGER_THAN_THE_LEASE + 15  # checks give up in time
        assert len(gate.answers) >= LONGER_THAN_THE_LEASE // TERM_RENEW_EVERY, gate.answers
        assert gate.answers[0][0] - started <= TERM_RENEW_EVERY + 1, gate.answers
        assert all(answer is not None and "etcd" in answer for _, answer in gate.answers)
        assert member.before_step("next-step") is not None, "cut off from etcd: no action"
        member.close()
    finally:
        etcd.close()


def test_a_run_does_not_carry_on_into_a_new_term(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    """A check that lost the key and won it again passes as leader, but in a new term:
    another leader may have acted between, so the run's next step is refused; the loop's
    own checks after the run lead in the new term as usual."""
    member = _member(etcd1, cluster_name, tmp_path)
    first = member.check()
    assert first.may_act and first.term
    member.run_started("failover-1", "failover", "mx1", "mx2")
    assert member.before_step("fence-old-primary") is None  # same term: go on
    pause_keeping_term(SYSTEM_CLOCK, LONGER_THAN_THE_LEASE, None, "hold")  # the term lapses
    refused = member.before_step("rewrite-dns")
    assert member.verdict is not None and member.verdict.may_act  # it leads again...
    assert member.verdict.term != first.term
    assert refused is not None and f"began in term {first.term}" in refused  # ...not the run
    member.run_finished("failover-1")
    assert member.before_step("reconcile") is None  # no run: the new term acts
    member.close()
