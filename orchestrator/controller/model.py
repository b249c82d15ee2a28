"""Values the decision works on: what observers saw, what the controller remembers, policy.

All immutable: each cycle decides on a snapshot and returns a new state, so a decision can
be replayed from the journal and tested from a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Health(Enum):
    UP = "up"  # every probe of the host passed
    FAILED = "failed"  # a probe failed (refused, timeout, bad reply...)
    UNKNOWN = "unknown"  # the observer has no fresh result (stale, or itself unreachable)


@dataclass(frozen=True)
class ObserverReport:
    """One observer's view of both hosts in this cycle (the controller is an observer too)."""

    observer: str
    hosts: dict[str, Health]
    # Seconds the standby's mailboxes lag the primary's, as this observer measured it.
    replication_lag_s: float | None = None
    # Why the observer abstains (has no view of a host): shown by `mxctl status`.
    note: str = ""

    def health(self, host: str) -> Health:
        return self.hosts.get(host, Health.UNKNOWN)


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    reports: tuple[ObserverReport, ...]

    def votes(self, host: str, health: Health) -> list[str]:
        return sorted(r.observer for r in self.reports if r.health(host) is health)

    def with_reports(self, more: tuple[ObserverReport, ...]) -> Snapshot:
        return Snapshot(self.taken_at, self.reports + more)

    def replication_lag_s(self) -> float | None:
        lags = [r.replication_lag_s for r in self.reports if r.replication_lag_s is not None]
        return max(lags) if lags else None


@dataclass(frozen=True)
class Policy:
    failure_threshold: int = 3  # consecutive failed cycles before a host counts as dead
    observers: int = 1  # observers configured (controller + witnesses); quorum is a majority
    max_replication_lag_s: float = 60.0  # gate on automatic promotion
    anti_flap_s: float = 3600.0  # after a failover, no automatic one until ack or expiry
    retry_base_s: float = 10.0  # a failed failover attempt waits this long before the next...
    retry_cap_s: float = 300.0  # ...doubling each time, never longer than this

    @property
    def quorum(self) -> int:
        return self.observers // 2 + 1


@dataclass(frozen=True)
class MaintenanceWindow:
    host: str
    starts: datetime
    ends: datetime

    def covers(self, host: str, now: datetime) -> bool:
        return host == self.host and self.starts <= now < self.ends


@dataclass(frozen=True)
class ControllerState:
    primary: str
    standby: str
    failed_cycles: dict[str, int] = field(default_factory=dict)
    fenced: frozenset[str] = frozenset()
    # Set after an automatic failover: no automatic failover until acknowledged or expired.
    blocked_until: datetime | None = None
    paused: bool = False
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # A failover journaled as started but not finished (the controller died mid-way, or
    # it failed after DNS moved and must be finished forward).
    failover_in_progress: str | None = None  # the host being promoted
    failed_attempts: int = 0  # failover attempts that failed in a row
    retry_at: datetime | None = None  # no new attempt before this (capped exponential backoff)

    def failures(self, host: str) -> int:
        return self.failed_cycles.get(host, 0)


def state_to_json(state: ControllerState) -> dict[str, object]:
    return {
        "primary": state.primary,
        "standby": state.standby,
        "failed_cycles": dict(state.failed_cycles),
        "fenced": sorted(state.fenced),
        "blocked_until": state.blocked_until.isoformat() if state.blocked_until else None,
        "paused": state.paused,
        "failover_in_progress": state.failover_in_progress,
        "failed_attempts": state.failed_attempts,
        "retry_at": state.retry_at.isoformat() if state.retry_at else None,
    }


def state_from_json(raw: dict[str, Any]) -> ControllerState:
    blocked = raw.get("blocked_until")
    failed = raw.get("failed_cycles") or {}
    fenced = raw.get("fenced") or []
    in_progress = raw.get("failover_in_progress")
    retry_at = raw.get("retry_at")
    return ControllerState(
        primary=str(raw["primary"]),
        standby=str(raw["standby"]),
        failed_cycles={str(k): int(v) for k, v in dict(failed).items()},
        fenced=frozenset(str(h) for h in fenced),
        blocked_until=datetime.fromisoformat(str(blocked)) if blocked else None,
        paused=bool(raw.get("paused", False)),
        failover_in_progress=str(in_progress) if in_progress else None,
        failed_attempts=int(raw.get("failed_attempts") or 0),
        retry_at=datetime.fromisoformat(str(retry_at)) if retry_at else None,
    )
