"""The rolling upgrade's plan (pure, a table) and its executor's order and stop-on-failure."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.clock import Clock
from orchestrator.controller.journal import Journal
from orchestrator.controller.planned import PlannedMove
from orchestrator.controller.runner import Evidence, StepFailed
from orchestrator.controller.upgrade import (
    POLICY_RC_D,
    UpgradeActions,
    apt_upgrade_command,
    held_policy,
    run_upgrade,
)
from orchestrator.controller.upgrade_plan import PairView, plan_upgrade

A, B = "mx1.example.test", "mx2.example.test"
OLD, NEW = "bookworm", "trixie"

FULL = [
    "switchover mx2",
    "upgrade-os mx1",
    "check-release mx1",
    "deploy mx1",
    "converge mx1",
    "switchback mx1",
    "upgrade-os mx2",
    "check-release mx2",
    "deploy mx2",
    "converge mx2",
]


def view(
    releases: dict[str, str], primary: str = A, fenced: frozenset[str] = frozenset()
) -> PairView:
    return PairView(A, B, primary, fenced, releases)


# (case, pair, target, expected step names, expected blocker fragment, skipped)
CASES = [
    ("both on 12", view({A: OLD, B: OLD}), NEW, FULL, None, ()),
    ("primary done (resumed)", view({A: NEW, B: OLD}), NEW, FULL[6:], None, (A,)),
    ("standby done first", view({A: OLD, B: NEW}), NEW, FULL[:6], None, (B,)),
    ("both done", view({A: NEW, B: NEW}), NEW, [], None, (A, B)),
    (
        "mail on the standby",
        view({A: OLD, B: OLD}, primary=B),
        NEW,
        [],
        "run `mxctl switchback`",
        (),
    ),
    ("a fenced host", view({A: OLD, B: OLD}, fenced=frozenset({B})), NEW, [], "is fenced", ()),
    ("release unknown", view({A: OLD}), NEW, [], f"release of {B} is unknown", ()),
    ("unsupported target", view({A: OLD, B: OLD}), "forky", [], "'forky' is not supported", ()),
    ("downgrade", view({A: NEW, B: OLD}), OLD, [], "no downgrade", ()),
    ("unknown release on a host", view({A: "buster", B: OLD}), NEW, [], "does not deploy", ()),
]


@pytest.mark.parametrize(("case", "pair", "target", "names", "blocker", "skipped"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_plan_upgrade(
    case: str,
    pair: PairView,
    target: str,
    names: list[str],
    blocker: str | None,
    skipped: tuple[str, ...],
) -> None:
    plan = plan_upgrade(pair, target)
    assert [s.name for s in plan.steps] == names, case
    assert plan.skipped == skipped
    if blocker is None:
        assert plan.blocker is None
    else:
        assert plan.blocker is not None and blocker in plan.blocker


def test_switches_name_the_host_mail_moves_to() -> None:
    steps = plan_upgrade(view({A: OLD, B: OLD}), NEW).steps
    assert (steps[0].action, steps[0].host) == ("switchover", B)
    assert (steps[5].action, steps[5].host) == ("switchback", A)


class FixedClock(Clock):
    def now(self) -> datetime:
        return datetime(2026, 11, 30, 14, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        pass


def actions(done: list[str], releases: dict[str, str], fail: str = "") -> UpgradeActions:
    def record(what: str) -> Evidence:
        done.append(what)
        if what == fail:
            raise StepFailed(f"{what} broke")
        return {}

    def move(planned: PlannedMove) -> bool:
        done.append(f"{planned.kind} {planned.to}")
        return True

    def upgrade_os(host: str) -> Evidence:
        releases[host] = NEW
        return record(f"upgrade-os {host}")

    return UpgradeActions(
        move=move,
        upgrade_os=upgrade_os,
        release_of=lambda host: releases[host],
        deploy=lambda host: record(f"deploy {host}"),
        converge=lambda host, peer: record(f"converge {host} from {peer}"),
    )


def test_run_upgrade_in_order_and_journaled(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    releases = {A: OLD, B: OLD}
    done: list[str] = []
    plan = plan_upgrade(view(dict(releases)), NEW)
    result = run_upgrade(journal, FixedClock(), plan, NEW, actions(done, releases))
    assert result.status == "done"
    assert done == [
        f"switchover {B}", f"upgrade-os {A}", f"deploy {A}", f"converge {A} from {B}",
        f"switchback {A}", f"upgrade-os {B}", f"deploy {B}", f"converge {B} from {A}",
    ]  # fmt: skip
    finished = [e.subject for e in journal.events(run_id=result.run_id) if e.status == "done"]
    assert sorted(finished) == sorted(FULL)


def test_a_failed_step_stops_the_run_where_mail_is(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    releases = {A: OLD, B: OLD}
    done: list[str] = []
    plan = plan_upgrade(view(dict(releases)), NEW)
    result = run_upgrade(journal, FixedClock(), plan, NEW, actions(done, releases, f"deploy {A}"))
    assert result.status == "aborted" and result.failed_step == "deploy mx1"
    assert f"switchback {A}" not in done  # mail stays on mx2: mx1 has no working config
    assert "deploy mx1 failed: deploy mx1.example.test broke" in (result.error or "")


def test_check_release_refuses_a_host_still_on_the_old_release(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    releases = {A: OLD, B: OLD}
    base = actions([], releases)
    stuck = UpgradeActions(base.move, lambda host: {}, base.release_of, base.deploy, base.converge)
    plan = plan_upgrade(view(dict(releases)), NEW)
    result = run_upgrade(journal, FixedClock(), plan, NEW, stuck)
    assert result.failed_step == "check-release mx1"
    assert "runs bookworm after its upgrade, not trixie" in (result.error or "")


def test_apt_upgrade_command_moves_sources_and_keeps_config() -> None:
    cmd = apt_upgrade_command(OLD, NEW)
    assert "s/\\bbookworm\\b/trixie/g" in cmd
    assert "full-upgrade" in cmd and "--force-confold" in cmd and cmd.startswith("set -e")
    # Dovecot is stopped and held down (its 2.4 cannot read the 2.3 file, and its trigger's
    # failed restart would fail dpkg), before apt runs, by a policy-rc.d put back on exit.
    held = cmd.index(f"> {POLICY_RC_D}")
    assert held < cmd.index("systemctl stop dovecot.service") < cmd.index("full-upgrade")
    assert cmd.index("trap ") < held and f"mv {POLICY_RC_D}.mxctl-saved {POLICY_RC_D}" in cmd


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["dovecot", "restart"], 101),  # dovecot-core's trigger (invoke-rc.d)
        (["dovecot.service", "restart"], 101),  # deb-systemd-invoke
        (["--quiet", "dovecot.socket", "start"], 101),
        (["postfix", "restart"], 0),  # every other service restarts as Debian wants
        (["ssh.service", "restart"], 0),
        (["dovecot-lmtpd", "restart"], 0),
    ],
)
def test_the_upgrade_policy_holds_dovecot_alone(tmp_path: Path, argv: list[str], code: int) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text(held_policy())
    assert subprocess.run(["sh", str(policy), *argv], check=False).returncode == code
