"""What the world looks like this cycle, read concurrently: probes, observers, DNS, fences.

Level-triggered: the controller does not trust its own memory of what it did; each cycle
it reads what DNS actually serves for the owned records and each reachable host's fence
state, and acts on the difference (see reconcile.py). Every read is bounded by the
cycle's deadline: a hung host or a slow nameserver yields "unknown" (or an observer's
earlier, still young answer) for this cycle, never a stretched cycle.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from orchestrator.config.cycle import world_read_budget
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.model import ObserverReport, Snapshot
from orchestrator.controller.observe import LocalRound, fetch_witness, short_name
from orchestrator.controller.polled import Polled
from orchestrator.controller.standby_view import standby_report
from orchestrator.dns.plan import desired_rrsets
from orchestrator.dns.provider import BaseProvider
from orchestrator.errors import MxctlError

log = logging.getLogger(__name__)


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
    """Reads the world once per cycle, never past the cycle's deadline.

    The controller's own probe round runs each cycle and bounds itself by the deadline
    (a probe unanswered by then failed, as a timeout does). Witnesses and the standby's
    view are polled (polled.py): the latest answer counts while younger than `max_age`.
    DNS and fence states count only when asked this cycle: they drive repairs, and an
    answer from before the last action could undo it.
    """

    def __init__(self, config: MxctlConfig, provider: Callable[[], BaseProvider]) -> None:
        self.config = config
        self.provider = provider
        self.pool = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="world")
        # How long a cycle waits for its reads when the caller gives no deadline.
        self.budget = world_read_budget(config.probes.timeout)
        self.witnesses = {w.name: Polled[ObserverReport](self.pool, f"witness {w.name}")
                          for w in config.witnesses}  # fmt: skip
        self.standby: Polled[tuple[ObserverReport, bool | None]] = Polled(self.pool, "standby")
        self.fences: dict[str, Polled[bool | None]] = {}
        self.dns: Polled[DnsView] = Polled(self.pool, "DNS read")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def read(
        self,
        local: Callable[[float], LocalRound],
        primary: str,
        standby: str,
        now: datetime,
        max_age: float,
        monotonic: Callable[[], float],
        deadline: float | None = None,
    ) -> tuple[LocalRound | None, World]:
        """`local(seconds)` is this controller's probe round, bounded by `seconds`."""
        c = self.config
        start = monotonic()
        due = start + self.budget if deadline is None else deadline
        ssh_timeout = min(c.ssh.timeout, self.budget)
        # The local probes end at their own per-step timeouts (a silent or frozen host fails
        # the first step after one timeout), and no later than two of them: cut at the
        # cycle's share of the interval instead, a healthy host answering slowly under load
        # (each step within the timeout) would be voted failed by this controller.
        probe_due = max(due, start + 2 * c.probes.timeout)
        local_f = self.pool.submit(local, max(0.0, probe_due - start))
        for w in c.witnesses:
            self.witnesses[w.name].ask(w.name, start, partial(fetch_witness, w, now, max_age))
        observer = standby_observer_name(standby)
        found = c.dns.mail_host(primary)
        address = next(iter(found[1]), "") if found else ""
        view_key = (standby, primary, address)
        if c.policy.standby_observer:
            args = (observer, ssh_target(c, standby), primary, address, c.probes.timeout)
            self.standby.ask(view_key, start, partial(standby_report, *args))
        for h in (primary, standby):
            fence = self.fences.setdefault(h, Polled(self.pool, f"fence state of {h}"))
            fence.ask(h, start, partial(_fenced, c, h, ssh_timeout))
        pair = (primary, standby)
        self.dns.ask(pair, start, partial(read_dns, c, self.provider(), pair))

        round_: LocalRound | None = None
        # The round stops its probes at the deadline itself; a moment more for its thread.
        done, _ = cf.wait([local_f], timeout=max(0.0, probe_due - monotonic()) + 0.2)
        if local_f in done and local_f.exception() is None:
            round_ = local_f.result()
        elif local_f in done:
            log.error("probe round failed: %r", local_f.exception())
        else:
            log.info("probe round: no answer by the cycle's deadline")
        reports: list[ObserverReport] = []
        if round_ is not None:
            reports.append(round_.report)
        fresh = start - max_age
        for w in c.witnesses:
            report, why = self.witnesses[w.name].answer(w.name, fresh, due, monotonic)
            reports.append(report or ObserverReport(w.name, {}, note=f"no report: {why}"))
        path: bool | None = None
        if c.policy.standby_observer:
            view, why = self.standby.answer(view_key, fresh, due, monotonic)
            if view is None:
                view = (ObserverReport(observer, {}, note=f"the standby: {why}"), None)
            reports.append(view[0])
            path = view[1]
        fenced = {h: self.fences[h].answer(h, start, due, monotonic)[0] for h in pair}
        dns, why = self.dns.answer(pair, start, due, monotonic)
        dns = dns or DnsView({}, f"not read this cycle: {why}")
        return round_, World(Snapshot(now, tuple(reports)), dns, fenced, path)


def standby_observer_name(standby: str) -> str:
    return f"standby:{short_name(standby)}"
