"""The controller cluster on the lab (issue 15's acceptance): three controller hosts, each
an etcd member and `mxctl watch` installed by mxctl_deploys.controller, against the real
mail pair and nameservers. Faults are the lab's own (SIGKILL through systemd, crashed
hosts, partitions); the evidence is what the nameservers serve and every controller's
journal. A missing piece (no lab, a failed deploy, no etcd) fails, never skips.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
LEASE = timedelta(seconds=LEASE_TTL)


@pytest.fixture(scope="module")
def cluster_lab(lab: LabState) -> Iterator[LabState]:
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    assert result.ok, f"deploy failed: {result.failed()}\n{result.stderr[-3000:]}"
    started = time.monotonic()
    with_controllers = install()
    print(f"controller hosts up and the cluster deployed in {time.monotonic() - started:.1f} s")
    try:
        yield with_controllers
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
    control.fault("mx1", "kill")
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
    ctl.start()  # as the first deploy left it: every service running
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


def test_mx1_crash_with_one_controller_down_fails_over_within_detection_and_2s(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, mail = cluster
    ctl.start()
    leader, term = wait_healthy_leader(ctl)
    # A follower's whole host crashes: its controller and its etcd member (2 of 3 left).
    down = next(n for n in NAMES if n != leader)
    control.fault(down, "kill")
    up = tuple(n for n in NAMES if n != down)
    assert ctl.wait_leader(LEASE_TTL + 5, up) == (leader, term)
    control.fault("mx1", "kill")
    took = wait_mx(MX2, mail.nameservers(), 30)
    print(f"MX moved {took} s after mx1's crash, with {down} down")
    assert took is not None, dump_all(ctl)
    assert took <= THRESHOLD * INTERVAL + 2, f"MX moved after {took:.1f} s\n{dump_all(ctl)}"
    deadline = time.monotonic() + 30
    while ctl.status(leader)["primary"] != "mx2.example.test":
        assert time.monotonic() < deadline, dump_all(ctl)
        time.sleep(0.1)
    done = [(e.subject, e.evidence.get("term")) for e in steps(ctl.journal_events(leader))]
    for step in ("fence-old-primary", "rewrite-dns", "verify-dns"):
        assert (step, term) in done, dump_all(ctl)


def test_leader_killed_between_fence_and_dns_the_next_leader_finishes_once(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, mail = cluster
    ctl.start()
    leader, term = wait_healthy_leader(ctl)
    # The leader cannot reach the primary nameserver: its DNS rewrite waits there, after
    # the fence, long enough to be killed in between.
    control.fault(leader, "partition", "ns1")
    control.fault("mx1", "kill")
    deadline = time.monotonic() + 30
    while not any(
        e.subject == "fence-old-primary" and e.status == "done"
        for e in steps(ctl.journal_events(leader))
    ):
        assert time.monotonic() < deadline, dump_all(ctl)
        time.sleep(0.05)
    ctl.kill(leader)
    others = tuple(n for n in NAMES if n != leader)
    _, new_term = ctl.wait_leader(LEASE_TTL + 10, others, after_term=term)
    assert wait_mx(MX2, mail.nameservers(), 40) is not None, dump_all(ctl)
    old_steps = steps(ctl.journal_events(leader))
    assert ("fence-old-primary", "done") in [(e.subject, e.status) for e in old_steps]
    assert not any(e.subject == "rewrite-dns" and e.status == "done" for e in old_steps)
    rewrites = [e for n in others for e in steps(ctl.journal_events(n))
                if e.subject == "rewrite-dns" and e.status == "done"]  # fmt: skip
    # The DNS change was made once, by a later leader (the first one after the kill, or
    # one after it when that one's term ended too) in its own term.
    assert len(rewrites) == 1, dump_all(ctl)
    assert int(rewrites[0].evidence.get("term", 0)) >= new_term, dump_all(ctl)
    # The fence was not done again: every later leader took it from the cluster's record.
    later = [e for n in others for e in steps(ctl.journal_events(n))]
    fences = [e for e in later if e.subject == "fence-old-primary"]
    assert fences and all(e.status == "done" for e in fences), dump_all(ctl)
    assert all("cluster's record" in e.reason for e in fences), dump_all(ctl)
    assert len({e.run_id for e in old_steps + later if e.run_id}) == 1, dump_all(ctl)


def _acting_spans(ctl: ClusterLab) -> dict[int, tuple[datetime, datetime]]:
    """Term -> (first, last) step any controller started or finished in it (adopted
    records left out): a step begun in one term and cut off counts as that term acting."""
    spans: dict[int, tuple[datetime, datetime]] = {}
    for events in journals(ctl).values():
        for e in steps(events):
            if "cluster's record" in e.reason or not e.evidence.get("term"):
                continue
            at, term = datetime.fromisoformat(e.at), int(e.evidence["term"])
            first, last = spans.get(term, (at, at))
            spans[term] = (min(first, at), max(last, at))
    return spans


def test_leader_partitioned_from_the_etcd_majority_stops_within_the_ttl(
    cluster: tuple[ClusterLab, ControlledLab],
) -> None:
    ctl, mail = cluster
    ctl.start()
    leader, term = wait_healthy_leader(ctl)
    others = tuple(n for n in NAMES if n != leader)
    cut_at = datetime.now(UTC)
    for other in others:  # it still sees the mail hosts, the nameservers, the witness
        control.fault(leader, "partition", other)
    control.fault("mx1", "kill")
    _, new_term = ctl.wait_leader(LEASE_TTL + 10, others, after_term=term)
    assert wait_mx(MX2, mail.nameservers(), 40) is not None, dump_all(ctl)
    # The cut-off leader acted (if at all) only while its lease could still be valid,
    # and knows it no longer leads.
    old_steps = steps(ctl.journal_events(leader))
    late = [e for e in old_steps if datetime.fromisoformat(e.at) > cut_at + LEASE]
    assert late == [], dump_all(ctl)
    assert ctl.leaders((leader,)) == {}, ctl.statuses((leader,))
    # No two terms acted at once: each term's steps end before the next term's begin.
    spans = sorted(_acting_spans(ctl).items())
    # Terms after the cut-off leader's finished the failover (the majority's leader may
    # itself change on the way: each term's steps still come after the last one's).
    assert spans and spans[-1][0] >= new_term, (spans, dump_all(ctl))
    for (_, (_, end)), (_, (start, _)) in itertools.pairwise(spans):
        assert end < start, (spans, dump_all(ctl))
