"""What the world looks like this cycle, read concurrently: probes, observers, DNS, fences.

Level-triggered: the controller does not trust its own memory of what it did; each cycle
it reads what DNS actually serves for the owned records and each reachable host's fence
state, and acts on the difference (see reconcile.py). Every read is bounded: a hung host
or a slow nameserver yields "unknown" for this cycle, never a stalled loop.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from orchestrator.config.cycle import READ_GRACE_S, world_read_budget
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.model import ObserverReport, Snapshot
from orchestrator.controller.observe import LocalRound, fetch_witness, short_name
from orchestrator.controller.standby_view import standby_report
from orchestrator.dns.plan import desired_rrsets
from orchestrator.dns.provider import BaseProvider
from orchestrator.errors import MxctlError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class DnsView:
    """Which mail host each owned record points at (None: neither, or unreadable)."""

    points: dict[str, str | None]  # "name TYPE" -> host
    error: str | None = None
    # "name MX" -> the host listed as lower-priority backup (None: the primary alone).
    backups: dict[str, str | None] = field(default_factory=dict)

    @property
    def backup(self) -> str | None:
        """The backup MX every owned MX set lists; None when none (or they disagree)."""
        listed = set(self.backups.values())
        return next(iter(listed)) if len(listed) == 1 else None

    @property
    def target(self) -> str | None:
        """The host every owned record points at; None when they disagree or unreadable."""
        hosts = set(self.points.values())
        if self.error or len(hosts) != 1:
            return None
        return next(iter(hosts))

    @property
    def mixed(self) -> bool:
        return self.error is None and len(set(self.points.values())) > 1

    def describe(self) -> str:
        if self.error:
            return f"unreadable ({self.error})"
        backup = f"; backup MX {self.backup}" if self.backup else ""
        points = ", ".join(f"{k} -> {v or 'elsewhere'}" for k, v in sorted(self.points.items()))
        return points + backup


@dataclass(frozen=True)
class World:
    snapshot: Snapshot
    dns: DnsView
    fenced_on_host: dict[str, bool | None]  # None: could not ask (down, hung, cut off)
    # Whether the standby reaches the primary's replication port (None: not known).
    replication_path: bool | None = None


def read_dns(config: MxctlConfig, provider: BaseProvider, pair: tuple[str, str]) -> DnsView:
    try:
        # Each host's records, alone and with the other as backup MX: (host, backup) -> set.
        shapes = [(h, b) for h in pair for b in (None, *(o for o in pair if o != h))]
        wanted = {
            shape: {r.key: r for r in desired_rrsets(config.dns, shape[0], shape[1])}
            for shape in shapes
        }
        points: dict[str, str | None] = {}
        backups: dict[str, str | None] = {}
        for record in wanted[(pair[0], None)].values():
            current = provider.read(record.name, record.rtype, provider.policy.deadline_in(3.0))
            found = next((s for s in shapes if current.same_data(wanted[s][record.key])), None)
            points[f"{record.name} {record.rtype}"] = found[0] if found else None
            if record.rtype == "MX":
                backups[f"{record.name} MX"] = found[1] if found else None
        return DnsView(points, backups=backups)
    except MxctlError as exc:
        return DnsView({}, str(exc))


def _fenced(config: MxctlConfig, host: str, timeout: float) -> bool | None:
    try:
        return fencing.is_fenced(ssh_target(config, host), timeout)
    except MxctlError:
        return None


class WorldReader:
    """Reads the world with a small thread pool; each read is bounded by `budget` s."""

    def __init__(self, config: MxctlConfig, provider: Callable[[], BaseProvider]) -> None:
        self.config = config
        self.provider = provider
        self.pool = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="world")
        # The config check (config/cycle.py) fits the lease to these same figures.
        self.budget = world_read_budget(config.probes.timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _get(self, future: cf.Future[T], default: T, deadline: float, what: str) -> T:
        try:
            return future.result(timeout=max(0.0, deadline))
        except cf.TimeoutError:
            log.info("%s: no answer within %.1f s this cycle", what, self.budget)
        except Exception:  # a read must never take the cycle down
            log.exception("%s failed", what)
        return default

    def read(
        self,
        local: Callable[[], LocalRound],
        primary: str,
        standby: str,
        now: datetime,
        max_age: float,
        monotonic: Callable[[], float],
    ) -> tuple[LocalRound | None, World]:
        c = self.config
        ssh_timeout = min(c.ssh.timeout, self.budget)
        local_f: cf.Future[LocalRound | None] = self.pool.submit(local)
        witness_f = [self.pool.submit(fetch_witness, w, now, max_age) for w in c.witnesses]
        observer = standby_observer_name(standby)
        found = c.dns.mail_host(primary)
        address = next(iter(found[1]), "") if found else ""
        standby_f = None
        if c.policy.standby_observer:
            args = (observer, ssh_target(c, standby), primary, address, c.probes.timeout)
            standby_f = self.pool.submit(standby_report, *args)
        fence_f = {h: self.pool.submit(_fenced, c, h, ssh_timeout) for h in (primary, standby)}
        dns_f = self.pool.submit(read_dns, c, self.provider(), (primary, standby))
        start = monotonic()

        def left() -> float:
            return self.budget + READ_GRACE_S - (monotonic() - start)

        no_round: LocalRound | None = None
        round_ = self._get(local_f, no_round, left() + 2 * c.probes.timeout, "probe round")
        reports: list[ObserverReport] = []
        if round_ is not None:
            reports.append(round_.report)
        for w, f in zip(c.witnesses, witness_f, strict=True):
            gone = ObserverReport(w.name, {}, note="no report in time")
            reports.append(self._get(f, gone, left(), f"witness {w.name}"))
        path: bool | None = None
        if standby_f is not None:
            slow = ObserverReport(observer, {}, note="the standby did not answer in time")
            report, path = self._get(standby_f, (slow, None), left(), observer)
            reports.append(report)
        # DNS and fence reads inform the reconciliation, not the decision: once the
        # observers are in they get at most a second more, so a hung nameserver or host
        # costs this cycle "unknown" rather than time.
        extra = monotonic() + min(READ_GRACE_S, max(0.0, left()))

        def grace() -> float:
            return extra - monotonic()

        fenced = {h: self._get(f, None, grace(), f"fence state of {h}") for h, f in fence_f.items()}
        dns = self._get(dns_f, DnsView({}, "no answer in time"), grace(), "DNS read")
        return round_, World(Snapshot(now, tuple(reports)), dns, fenced, path)


def standby_observer_name(standby: str) -> str:
    return f"standby:{short_name(standby)}"
