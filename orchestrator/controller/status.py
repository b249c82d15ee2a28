"""What the controller shows: `/status` (and `mxctl status`) and the Prometheus metrics.

Every observer's vote is listed, with the reason when it abstains, so an operator can
see why the controller did or did not act; open alerts, what DNS serves and each host's
fence state are shown as the last cycle read them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.clock import Clock
from orchestrator.cluster.member import ClusterMember
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.alerts import PAUSE_ALERTS, AlertBook
from orchestrator.controller.decision import Decision
from orchestrator.controller.metrics import ControllerMetrics
from orchestrator.controller.model import ControllerState, Health, Policy
from orchestrator.controller.observe import LocalRound
from orchestrator.controller.observers import ObserverWatch
from orchestrator.controller.operator import OperatorRequests
from orchestrator.controller.quorum import host_votes
from orchestrator.controller.windows import next_start, open_windows
from orchestrator.controller.world import World

CONTROLLER = "controller"


class StatusView:
    config: MxctlConfig
    clock: Clock
    metrics: ControllerMetrics
    operator: OperatorRequests
    alerts: AlertBook
    last_round: LocalRound | None
    last_world: World | None
    last_sentence: str
    policy: Policy
    cluster: ClusterMember | None
    observer_watch: ObserverWatch

    def load_state(self) -> ControllerState:
        raise NotImplementedError

    def lag_s(self) -> float | None:
        raise NotImplementedError

    def replication_broken(self) -> str | None:
        raise NotImplementedError

    def health(self) -> tuple[bool, str]:
        raise NotImplementedError

    def observers(self, state: ControllerState) -> list[dict[str, Any]]:
        """Each configured observer's vote on each host, whether it votes on the primary
        (the quorum counts only those) or why it abstains, and for how many cycles."""
        if self.last_world is None:
            return []
        standing = {s.observer: s for s in self.observer_watch.last}
        rows = []
        for report in self.last_world.snapshot.reports:
            votes = {h: report.health(h).value for h in (state.primary, state.standby)}
            abstains = all(v == Health.UNKNOWN.value for v in votes.values())
            note = report.note or ("no fresh report" if abstains else "")
            s = standing.get(report.observer)
            rows.append({"observer": report.observer, "votes": votes, "note": note,
                         "voting": s.voting if s else not abstains,
                         "abstained_cycles": s.abstained_cycles if s else 0})  # fmt: skip
        reported = {r.observer for r in self.last_world.snapshot.reports}
        rows += [{"observer": s.observer, "votes": {}, "note": s.why, "voting": False,
                  "abstained_cycles": s.abstained_cycles}
                 for s in self.observer_watch.last if s.observer not in reported]  # fmt: skip
        return rows

    def status(self) -> dict[str, Any]:
        state = self.load_state()
        now = self.clock.now()
        world = self.last_world
        quorum = {}
        if world is not None:
            configured = self.policy.observers
            for host in (state.primary, state.standby):
                v = host_votes(world.snapshot, host, configured, host == state.primary)
                quorum[host] = {"failed": list(v.failed), "up": list(v.up),
                                "abstained": list(v.abstained), "needed": v.needed}  # fmt: skip
        healthy, why = self.health()
        found = {
            "maintenance_windows": [
                {
                    "name": w.name,
                    "host": w.host,
                    "cron": w.cron,
                    "duration_s": w.duration,
                    "open": bool(open_windows([w], now)),
                    "next_start": next_start(w, now).isoformat(),
                }
                for w in self.config.maintenance.windows
            ],
            "primary": state.primary,
            "standby": state.standby,
            "fenced": sorted(state.fenced),
            # In a cluster the request lives in etcd: /status must answer without it (etcd
            # may have no quorum), so it shows the state the loop last wrote.
            "paused": state.paused if self.cluster is not None else self.operator.paused(),
            "blocked_until": state.blocked_until.isoformat() if state.blocked_until else None,
            "failover_in_progress": state.failover_in_progress,
            "failed_attempts": state.failed_attempts,
            "retry_at": state.retry_at.isoformat() if state.retry_at else None,
            "replication_lag_s": self.lag_s(),
            "replication_broken": self.replication_broken(),
            "last_cycle": self.last_sentence,
            "health": {"ok": healthy, "reason": why},
            "alerts": [a.__dict__ for a in self.alerts.open_alerts().values()],
            # What a pause holds back (a failover, a fence, a DNS repair), from its alerts.
            "held_by_pause": [
                a.reason for k, a in self.alerts.open_alerts().items() if k in PAUSE_ALERTS
            ],
            "observations": {
                r.observer: {h: v.value for h, v in r.hosts.items()}
                for r in (world.snapshot.reports if world else ())
            },
            "observers": self.observers(state),
            "voting": {
                "voting": [s.observer for s in self.observer_watch.last if s.voting],
                "configured": self.policy.observers,
                "majority": self.policy.quorum,
            }
            if world is not None
            else {},
            "quorum": quorum,
            "dns": world.dns.describe() if world else None,
            "fenced_on_host": world.fenced_on_host if world else {},
            "probes": {h: [r.to_json() for r in rs] for h, rs in self.last_round.results.items()}
            if self.last_round
            else {},
        }
        if self.cluster is not None:  # who leads, in which term, whether etcd answers
            found["cluster"] = self.cluster.describe()
        return found

    def _update_metrics(
        self, state: ControllerState, world: World, decision: Decision, alerts: set[str]
    ) -> None:
        m = self.metrics
        m.cycles.labels(decision.outcome.value).inc()
        if self.last_round is not None:
            for fqdn, results in self.last_round.results.items():
                for r in results:
                    m.probe_ok.labels(CONTROLLER, fqdn, r.probe).set(1 if r.ok else 0)
                    m.probe_latency.labels(fqdn, r.probe).set(r.latency)
        for report in world.snapshot.reports:
            for host, health in report.hosts.items():
                m.host_health.labels(report.observer, host).set(1 if health is Health.UP else 0)
        for host in (state.primary, state.standby):
            m.is_primary.labels(host).set(1 if host == state.primary else 0)
            m.fenced.labels(host).set(1 if host in state.fenced else 0)
        m.paused.set(1 if state.paused else 0)
        m.blocked.set(1 if state.blocked_until else 0)
        m.failed_attempts.set(state.failed_attempts)
        for key in set(m.known_alerts) | alerts:
            m.alert_open.labels(key).set(1 if key in alerts else 0)
        m.known_alerts.update(alerts)
