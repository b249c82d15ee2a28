"""`mxctl watch`'s cycle in a controller cluster, on real etcd, against mail hosts that
refuse every connection (tests/controller/test_loop_local.py's world: no lab needed).

The leader observes, counts the other controllers' published views as votes, decides and
writes the shared state; a follower only observes and publishes; without etcd nobody acts.
"""

from __future__ import annotations

from pathlib import Path

from mxlab.etcd_local import EtcdCluster
from prometheus_client import generate_latest

from orchestrator.cluster.leadership import ClusterKeys
from orchestrator.cluster.member import NO_QUORUM_ALERT, ClusterMember
from orchestrator.cluster.shared_state import SharedState
from orchestrator.config import parse_config
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller
from tests.controller.test_loop_local import HOSTS, _config, _refused

MEMBERS = ("ctl1", "ctl2")
# Probes 0.5 s: the longest cycle is 4 s, plus the default margin (1 s).
LEASE_TTL = 5
TSIG = "c2VjcmV0c2VjcmV0c2VjcmV0"


def cluster_controller(
    tmp_path: Path, etcd: EtcdCluster, cluster: str, member: str
) -> tuple[Controller, Path]:
    """A controller of the cluster, and its config file (its journal is where the CLI
    opens it: `[pair] state_dir`/journal.db)."""
    for address in HOSTS.values():
        assert _refused(address, 25), f"{address} must refuse"
    folder = tmp_path / member
    folder.mkdir()
    endpoints = ", ".join(f'"{e}"' for e in etcd.endpoints)
    text = (
        _config(folder, standby_observer=False)
        + f"""
[cluster]
name = "{cluster}"
member = "{member}"
members = {list(MEMBERS)!r}
endpoints = [{endpoints}]
allow_insecure_http = true
lease_ttl = {LEASE_TTL}
""".replace("'", '"')
    )
    path = folder / "mxctl.toml"
    path.write_text(text)
    config = parse_config(text, path, {"TSIG": TSIG})
    assert config.cluster is not None
    journal = Journal(config.pair.state_dir / "journal.db")
    return Controller(config, journal, cluster=ClusterMember(config.cluster, journal)), path


def test_leader_decides_with_the_followers_votes_follower_only_observes(
    tmp_path: Path, cluster_name: str
) -> None:
    etcd = EtcdCluster(tmp_path / "etcd", 1)
    try:
        etcd.start_all()
        one, _ = cluster_controller(tmp_path, etcd, cluster_name, "ctl1")
        two, _ = cluster_controller(tmp_path, etcd, cluster_name, "ctl2")
        assert one.policy.observers == 2  # itself and the other controller
        first = one.cycle()
        # Leading, it probed and decided; ctl2 has not published yet, so it abstains.
        assert "only 1 of 2 observers see primary" in first, first
        follower = two.cycle()
        assert follower.startswith("follower: ctl1 leads (term "), follower
        assert "published our view: mx1.example.test failed, mx2.example.test failed" in follower
        second = one.cycle()
        # Both controllers' views now count: mx1 failed by 2 of 2.
        assert "failed for 1 of 3 cycles by 2 of 2 voting observers" in second, second
        decision = one.journal.last_decision()
        assert decision is not None
        assert set(decision.evidence["observations"]) == {"ctl1", "ctl2"}
        # The leader's state is the cluster's, written in its term; the follower wrote none.
        shared = SharedState(one.cluster.client, ClusterKeys(cluster_name))  # type: ignore[union-attr]
        state = shared.read_state().value
        assert state is not None and state.primary == "mx1.example.test"
        assert state.failures("mx1.example.test") == 1
        follower_events = [e.subject for e in two.journal.events() if e.kind == "decision"]
        assert follower_events == []  # it decided nothing
        # Status and metrics say who leads, in which term, and whether etcd answers.
        lead, follow = one.status()["cluster"], two.status()["cluster"]
        assert (lead["role"], lead["leader"], lead["etcd"]) == ("leader", "ctl1", "ok")
        assert (follow["role"], follow["leader"], follow["term"]) == (
            "follower",
            "ctl1",
            lead["term"],
        )
        assert 0 < lead["lease_left_s"] <= LEASE_TTL and follow["lease_left_s"] is None
        metrics = generate_latest(one.metrics.registry).decode()
        assert "mxctl_cluster_leader 1.0" in metrics and "mxctl_cluster_etcd_up 1.0" in metrics
        assert f"mxctl_cluster_term {float(lead['term'])}" in metrics
        # etcd gone: nobody acts, and each says why and alerts once.
        etcd.stop(0)
        for controller in (one, two):
            for _ in range(2):
                sentence = controller.cycle()
                assert sentence.startswith("no action: etcd has no quorum for us"), sentence
            assert _etcd_alerts(controller) == [(NO_QUORUM_ALERT, "open")]
            assert NO_QUORUM_ALERT in controller.alerts.open_alerts()
        assert [e.subject for e in two.journal.events() if e.kind == "decision"] == []
        # etcd back: the leader's next cycle resolves its alert.
        etcd.start(0)
        etcd.wait_healthy()
        sentence = one.cycle()
        assert "observers" in sentence, sentence  # it decided again
        assert _etcd_alerts(one) == [(NO_QUORUM_ALERT, "open"), (NO_QUORUM_ALERT, "resolved")]
    finally:
        etcd.close()


def _etcd_alerts(controller: Controller) -> list[tuple[str, str]]:
    events = controller.journal.events()
    found = [e for e in events if e.kind == "alert" and e.subject == NO_QUORUM_ALERT]
    return [(e.subject, e.status) for e in sorted(found, key=lambda e: e.id)]


def test_a_lone_controller_shows_no_cluster(tmp_path: Path) -> None:
    """Without [cluster] nothing of the cluster shows: no status key, no metric."""
    from tests.controller.test_loop_local import _controller as lone

    controller = lone(tmp_path, standby_observer=False)
    controller.cycle()
    assert "cluster" not in controller.status()
    assert "mxctl_cluster" not in generate_latest(controller.metrics.registry).decode()
