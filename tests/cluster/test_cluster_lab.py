"""The controller cluster on the lab (issue 15's acceptance): three controller hosts, each
an etcd member and `mxctl watch` installed by mxctl_deploys.controller, against the real
mail pair and nameservers. Faults are the lab's own (SIGKILL through systemd, crashed
hosts, partitions); the evidence is what the nameservers serve and every controller's
journal. A missing piece (no lab, a failed deploy, no etcd) fails, never skips.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mxlab import control, controllerhosts
from mxlab.clustered import NAMES, ClusterLab, install
from mxlab.controlled import ControlledLab, dump, mx_at, write_config
from mxlab.controllerinv import LEASE_TTL
from mxlab.deploying import LAB_CLUSTER_INVENTORY, LAB_DEPLOY, LAB_INVENTORY
from mxlab.state import LabState

from orchestrator.controller.fencing import FENCE_TABLE
from orchestrator.controller.journal import Event
from orchestrator.deploy import runner

pytestmark = pytest.mark.lab

MX1 = ["10 mx1.example.test.", "20 mx2.example.test."]
MX2 = ["10 mx2.example.test."]
INTERVAL, THRESHOLD = 1.0, 3  # the lab config's [policy]


@pytest.fixture(scope="module")
def cluster_lab(lab: LabState) -> Iterator[LabState]:
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    assert result.ok, f"deploy failed: {result.failed()}\n{result.stderr[-3000:]}"
    started = time.monotonic()
    install(lab)
    print(f"controller hosts up and the cluster deployed in {time.monotonic() - started:.1f} s")
    try:
        yield lab
    finally:
        # The other lab tests run on the lab as `lab up` made it, without controllers.
        controllerhosts.down()


@pytest.fixture
def cluster(cluster_lab: LabState, tmp_path: Path) -> Iterator[tuple[ClusterLab, ControlledLab]]:
    mail = ControlledLab(cluster_lab, tmp_path, write_config(cluster_lab, tmp_path))
    ctl = ClusterLab(cluster_lab)
    ctl.reset()
    mail.restore()
    try:
        mail.start_witness()
        yield ctl, mail
    finally:
        ctl.reset()
        mail.restore()


def journals(ctl: ClusterLab) -> dict[str, list[Event]]:
    return {name: ctl.journal_events(name) for name in NAMES}


def dump_all(ctl: ClusterLab) -> str:
    return "\n".join(f"--- {n}\n{dump(events)}" for n, events in journals(ctl).items())


def steps(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "step"]


def wait_mx(want: list[str], nameservers: list[str], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if all(mx_at(ns) == want for ns in nameservers):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    return None


def wait_healthy_leader(ctl: ClusterLab, timeout: float = 40.0) -> tuple[str, int]:
    leader, term = ctl.wait_leader(timeout)
    deadline = time.monotonic() + timeout
    while "healthy" not in ctl.status(leader).get("last_cycle", ""):
        assert time.monotonic() < deadline, ctl.status(leader)
        time.sleep(0.1)
    return leader, term


def test_leader_sigkilled_another_leads_within_ttl_and_an_interval(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, _ = cluster
    ctl.start()
    old, old_term = wait_healthy_leader(ctl)
    killed_at = time.monotonic()
    ctl.kill(old)
    others = tuple(n for n in NAMES if n != old)
    new, new_term = ctl.wait_leader(LEASE_TTL + INTERVAL + 10, others, after_term=old_term)
    took = time.monotonic() - killed_at
    print(f"new leader {new} (term {new_term}) {took:.2f} s after {old}'s SIGKILL")
    assert new != old and new_term > old_term
    # The bound (lease TTL + one interval), plus etcd's lease-expiry sweep
    # (every 500 ms) and the status poll (our 50 ms, the new leader's cycle).
    assert took <= LEASE_TTL + INTERVAL + 1.0, f"{took:.2f} s\n{dump_all(ctl)}"
    # The new leader's journal says it won, in the later term.
    won = [e for e in ctl.journal_events(new) if e.kind == "cluster" and e.subject == "leader"]
    assert won and won[-1].evidence["term"] == new_term, dump_all(ctl)


def test_etcd_majority_lost_no_action_an_alert_mail_untouched(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, mail = cluster
    ctl.start()
    wait_healthy_leader(ctl)
    for name in NAMES[1:]:
        ctl.stop_etcd(name)
    # Within the lease TTL every controller knows it may not act.
    deadline = time.monotonic() + LEASE_TTL + 3 * INTERVAL
    while ctl.leaders() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ctl.leaders() == {}, ctl.statuses()
    control.fault("mx1", "down")
    # Long past detection (threshold x interval) and a lease: nothing may have moved.
    time.sleep(THRESHOLD * INTERVAL + LEASE_TTL + 4)
    assert all(mx_at(ns) == MX1 for ns in mail.nameservers())
    everything = journals(ctl)
    assert all(steps(events) == [] for events in everything.values()), dump_all(ctl)
    alerts = [
        e
        for events in everything.values()
        for e in events
        if e.kind == "alert" and e.subject == "etcd-no-quorum" and e.status == "open"
    ]
    assert alerts, dump_all(ctl)
    # mx2 was not promoted or fenced, and still takes mail.
    fenced = control.exec_in("mx2", ["nft", "list", "table", "inet", FENCE_TABLE], capture=True)
    assert fenced.returncode != 0, fenced.stdout
    statuses = ctl.statuses()
    assert all(s["cluster"]["etcd"] != "ok" for s in statuses.values()), statuses
    # Not for want of seeing it: the controllers saw mx1 fail and held back.
    cycles = [s["last_cycle"] for s in statuses.values()]
    assert any("mx1.example.test failed" in c for c in cycles), cycles


def test_cluster_deploy_runs_every_member_and_a_second_run_changes_nothing(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, _ = cluster
    second = runner.run_deploy(LAB_CLUSTER_INVENTORY, runner.CONTROLLER_DEPLOY, limit=NAMES)
    assert second.ok, second.stderr[-3000:]
    assert {n: second.changed(n) for n in NAMES} == {n: [] for n in NAMES}
    client = ctl.etcd()
    try:
        # Three members, over TLS with client certificates, agreeing on one cluster.
        status = client.status()
    finally:
        client.close()
    assert int(status["header"]["member_id"]) != 0 and status["leader"], status
    for name in NAMES:
        active = control.exec_in(name, ["systemctl", "is-active", "etcd"], capture=True)
        assert active.stdout.strip() == "active", (name, active.stdout)
