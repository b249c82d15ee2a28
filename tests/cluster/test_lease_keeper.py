"""A run longer than the lease (a planned move waits out TTLs for minutes) keeps its term:
the lease is renewed in the background while the run goes on, on real etcd. Without the
keeper the same wait ends the term; with etcd gone the keeper cannot save it."""

from __future__ import annotations

import time
from pathlib import Path

from mxlab.etcd_local import EtcdCluster

from orchestrator.cluster.member import ClusterMember
from orchestrator.config.cluster_section import ClusterConfig
from orchestrator.controller.journal import Journal

TTL, MARGIN = 2, 0.5
LONGER_THAN_THE_LEASE = 2 * TTL + 0.5


def _member(etcd: EtcdCluster, cluster: str, folder: Path) -> ClusterMember:
    config = ClusterConfig(cluster, "ctl1", ("ctl1",), tuple(etcd.endpoints), None, TTL, MARGIN)
    return ClusterMember(config, Journal(folder / "journal.db"))


def test_a_long_step_under_the_keeper_keeps_the_term(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    member = _member(etcd1, cluster_name, tmp_path)
    first = member.check()
    assert first.may_act and first.term
    with member.lease_kept():
        time.sleep(LONGER_THAN_THE_LEASE)
        assert member.before_step("next-step") is None  # may still act, same term
    assert member.verdict is not None and member.verdict.term == first.term
    member.close()


def test_without_the_keeper_the_same_wait_ends_the_term(
    etcd1: EtcdCluster, cluster_name: str, tmp_path: Path
) -> None:
    member = _member(etcd1, cluster_name, tmp_path)
    first = member.check()
    assert first.may_act and first.term
    time.sleep(LONGER_THAN_THE_LEASE)
    again = member.check()  # a new lease, and (nobody else here) a new, later term
    assert again.term != first.term
    member.close()


def test_the_keeper_cannot_hold_a_lease_etcd_no_longer_answers_for(
    cluster_name: str, tmp_path: Path
) -> None:
    etcd = EtcdCluster(tmp_path / "etcd", 1)
    try:
        etcd.start_all()
        member = _member(etcd, cluster_name, tmp_path)
        assert member.check().may_act
        with member.lease_kept():
            etcd.stop(0)
            time.sleep(TTL + 0.5)
            refused = member.before_step("next-step")
        assert refused is not None, "a leader cut off from etcd must not act"
        member.close()
    finally:
        etcd.close()
