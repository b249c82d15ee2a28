"""Prometheus metrics of the controller (one registry per controller, not the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.probe_ok = Gauge(
            "mxctl_probe_ok", "1 when the probe passed", ["observer", "host", "probe"], registry=r
        )
        self.probe_latency = Gauge(
            "mxctl_probe_latency_seconds", "probe latency", ["host", "probe"], registry=r
        )
        self.host_health = Gauge(
            "mxctl_host_up", "1 when an observer sees the host up", ["observer", "host"], registry=r
        )
        self.is_primary = Gauge("mxctl_primary", "1 for the current primary", ["host"], registry=r)
        self.fenced = Gauge("mxctl_fenced", "1 for a fenced host", ["host"], registry=r)
        self.paused = Gauge("mxctl_paused", "1 when automatic failover is paused", registry=r)
        self.blocked = Gauge("mxctl_blocked", "1 while anti-flap blocks failover", registry=r)
        self.cycles = Counter("mxctl_cycles", "controller cycles", ["outcome"], registry=r)
        self.errors = Counter("mxctl_cycle_errors", "cycles that hit an error", registry=r)
        self.failovers = Counter("mxctl_failovers", "failover runs", ["status"], registry=r)
        self.dns_verify = Gauge(
            "mxctl_dns_verify_seconds",
            "time from DNS apply to verified at every server",
            registry=r,
        )
        self.cycle_seconds = Gauge("mxctl_cycle_seconds", "duration of the last cycle", registry=r)
        self.last_completed = Gauge(
            "mxctl_last_cycle_completed_timestamp_seconds",
            "wall-clock time the last cycle completed without raising",
            registry=r,
        )
        self.failed_attempts = Gauge(
            "mxctl_failover_failed_attempts", "failover attempts failed in a row", registry=r
        )
        self.alert_open = Gauge("mxctl_alert_open", "1 while the alert is open", ["alert"],
                                registry=r)  # fmt: skip
        self.known_alerts: set[str] = set()


class ClusterMetrics:
    """[cluster] only (a lone controller's /metrics stay as they were): whether this
    controller leads, the term it knows, whether etcd answered."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.leader = Gauge("mxctl_cluster_leader", "1 while this controller leads", registry=r)
        self.term = Gauge("mxctl_cluster_term", "the leader's term (create revision)", registry=r)
        self.etcd_up = Gauge("mxctl_cluster_etcd_up", "1 when etcd answered", registry=r)
