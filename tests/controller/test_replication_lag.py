"""The replication-lag figure the promotion gate uses, from canary results (a table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.controller.replication import ReplicationLag
from orchestrator.probes.result import ErrorClass, ProbeResult

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivered(ok: bool = True) -> ProbeResult:
    error = None if ok else ErrorClass.REFUSED
    return ProbeResult("canary-delivery", "mx1", ok, 0.05, error)


def replicated(ok: bool, latency: float = 0.1) -> ProbeResult:
    return ProbeResult("canary-replication", "mx2", ok, latency,
                       None if ok else ErrorClass.LAGGING)  # fmt: skip


def test_lag_is_the_measured_latency_while_replication_works() -> None:
    lag = ReplicationLag(T0)
    assert lag.update([delivered(), replicated(True, 0.12)], T0) == 0.12


def test_lag_grows_from_the_last_replicated_canary_while_replication_is_broken() -> None:
    lag = ReplicationLag(T0)
    lag.update([delivered(), replicated(True)], T0)
    assert lag.update([delivered(), replicated(False)], T0 + timedelta(seconds=30)) == 30
    assert lag.update([delivered(), replicated(False)], T0 + timedelta(seconds=90)) == 90


def test_a_dead_primary_freezes_the_figure() -> None:
    lag = ReplicationLag(T0)
    lag.update([delivered(), replicated(False)], T0 + timedelta(seconds=20))
    assert lag.update([delivered(ok=False)], T0 + timedelta(seconds=600)) == 20


def test_never_replicated_counts_from_the_start() -> None:
    lag = ReplicationLag(T0)
    assert lag.update([delivered(), replicated(False)], T0 + timedelta(seconds=45)) == 45


def test_one_canary_that_does_not_replicate_marks_replication_broken_until_one_does() -> None:
    lag = ReplicationLag(T0)
    lag.update([delivered(), replicated(True)], T0)
    assert lag.broken is None
    lag.update([delivered(), replicated(False)], T0 + timedelta(seconds=10))
    assert lag.broken is not None and "not the standby" in lag.broken
    lag.update([delivered(ok=False)], T0 + timedelta(seconds=20))  # primary down: unchanged
    assert lag.broken is not None
    lag.update([delivered(), replicated(True)], T0 + timedelta(seconds=30))
    assert lag.broken is None
