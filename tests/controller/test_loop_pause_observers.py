"""The loop, paused or short of observers, on a world it is handed (no lab needed).

The world reader is replaced by one that returns a fixed world each cycle, and
`carry_out` and the repairs by recorders: what the loop holds back, alerts and shows in
`/status` is then all that these tests look at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import controller_cmd
from orchestrator.cli.main import main
from orchestrator.controller import loop as loop_module
from orchestrator.controller.loop import Controller
from orchestrator.controller.model import Health, ObserverReport, Snapshot
from orchestrator.controller.observe import LocalRound
from orchestrator.controller.world import DnsView, World
from tests.controller.test_loop_local import _config, _controller

MX1, MX2 = "mx1.example.test", "mx2.example.test"
STANDBY_VIEW = "standby:mx2"


class FixedWorld:
    """Stands in for the WorldReader: the same world every cycle."""

    def __init__(self, reports: tuple[ObserverReport, ...], dns_target: str) -> None:
        self.reports, self.dns_target = reports, dns_target

    def read(
        self,
        local: Callable[[], LocalRound],
        primary: str,
        standby: str,
        now: datetime,
        max_age: float,
        monotonic: Callable[[], float],
    ) -> tuple[LocalRound | None, World]:
        points = {"example.test MX": self.dns_target}
        backup = MX2 if self.dns_target == MX1 else None  # as the backup rule wants it
        backups: dict[str, str | None] = {"example.test MX": backup}
        world = World(Snapshot(now, self.reports), DnsView(points, None, backups),
                      {MX1: False, MX2: False})  # fmt: skip
        return LocalRound(self.reports[0], {}), world

    def close(self) -> None:
        pass


def _rigged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: FixedWorld
) -> tuple[Controller, list[str]]:
    controller = _controller(tmp_path, standby_observer=True)
    controller.world_reader = world  # type: ignore[assignment]
    acted: list[str] = []

    def no_failover(*args: Any, **kwargs: Any) -> Any:
        acted.append("failover")
        raise AssertionError("a failover was carried out")

    def no_repair(fix: Any, provider: Any, evidence: Any) -> dict[str, str]:
        acted.append(f"repair: {'; '.join(fix.notes)}")
        return {}

    monkeypatch.setattr(loop_module, "carry_out", no_failover)
    monkeypatch.setattr(controller.upkeep, "apply", no_repair)
    return controller, acted


def _report(observer: str, mx1: Health, note: str = "") -> ObserverReport:
    hosts = {} if mx1 is Health.UNKNOWN else {MX1: mx1}
    if observer == "controller":
        hosts[MX2] = Health.UP
    return ObserverReport(observer, hosts, note=note)


def test_paused_a_dead_primary_is_alerted_and_not_failed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = FixedWorld((_report("controller", Health.FAILED),
                       _report(STANDBY_VIEW, Health.FAILED)), MX1)  # fmt: skip
    controller, acted = _rigged(tmp_path, monkeypatch, dead)
    controller.operator.set_paused(True, controller.clock.now(), "ops")
    sentences = [controller.cycle() for _ in range(4)]
    assert acted == [] and "automation is paused" in sentences[-1], sentences
    status = controller.status()
    assert status["primary"] == MX1 and status["failover_in_progress"] is None
    keys = [a["key"] for a in status["alerts"]]
    assert "paused-failover-held" in keys, keys
    assert len(status["held_by_pause"]) == 1
    assert f"primary {MX1} dead for" in status["held_by_pause"][0]


def test_paused_a_dns_move_behind_its_back_is_not_adopted_but_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = FixedWorld((_report("controller", Health.UP), _report(STANDBY_VIEW, Health.UP)), MX2)
    controller, acted = _rigged(tmp_path, monkeypatch, moved)
    controller.operator.set_paused(True, controller.clock.now(), "ops")
    controller.cycle()
    status = controller.status()
    assert acted == [] and status["failover_in_progress"] is None
    assert [h for h in status["held_by_pause"] if "finishing that move" in h], status
    controller.operator.set_paused(False, controller.clock.now(), "ops")
    with pytest.raises(AssertionError, match="a failover was carried out"):
        controller._cycle()  # resumed: the move is adopted and finished at once
    assert acted[0].startswith("repair: DNS already points at the standby"), acted


def test_lost_observer_is_alerted_and_status_shows_who_votes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = FixedWorld((_report("controller", Health.UP),
                         _report(STANDBY_VIEW, Health.UNKNOWN, "cannot ask the standby: refused")),
                        MX1)  # fmt: skip
    controller, acted = _rigged(tmp_path, monkeypatch, silent)
    controller.cycle()
    assert not [a for a in controller.status()["alerts"] if a["key"].startswith("observer-lost")]
    controller.cycle()
    controller.cycle()
    status = controller.status()
    lost = {a["key"]: a["reason"] for a in status["alerts"]}[f"observer-lost:{STANDBY_VIEW}"]
    assert lost.startswith(f"observer lost: {STANDBY_VIEW}: cannot ask the standby: refused")
    assert "only 1 of 2 configured observers vote (controller)" in lost, lost
    rows = {r["observer"]: r for r in status["observers"]}
    assert rows[STANDBY_VIEW]["voting"] is False and rows[STANDBY_VIEW]["abstained_cycles"] == 3
    assert rows["controller"]["voting"] is True
    assert status["voting"] == {"voting": ["controller"], "configured": 2, "majority": 2}
    assert acted == []


def test_mxctl_status_prints_who_votes_who_abstains_and_what_the_pause_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = FixedWorld((_report("controller", Health.FAILED),
                        _report(STANDBY_VIEW, Health.UNKNOWN, "cannot ask the standby: refused")),
                       MX1)  # fmt: skip
    controller, _ = _rigged(tmp_path, monkeypatch, world)
    controller.operator.set_paused(True, controller.clock.now(), "ops")
    for _ in range(3):
        controller.cycle()
    # The running controller's /status, as `mxctl status` fetches it.
    monkeypatch.setattr(controller_cmd, "_live_status", lambda config: controller.status())
    monkeypatch.setenv("TSIG", "c2VjcmV0c2VjcmV0c2VjcmV0")
    config = tmp_path / "mxctl.toml"
    config.write_text(_config(tmp_path, True))
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "observers: 1 of 2 vote (majority of all configured: 2)" in out, out
    assert "  controller: votes: mx1.example.test failed" in out, out
    assert f"  {STANDBY_VIEW}: ABSTAINS for 3 cycle(s): cannot ask the standby: refused" in out, out
    assert f"observer lost: {STANDBY_VIEW}" in out, out
    assert "HELD BY PAUSE" not in out, out
    controller.world_reader = FixedWorld(world.reports, MX2)  # type: ignore[assignment]
    controller.cycle()  # DNS moved behind its back, and the pause holds the adoption
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "HELD BY PAUSE: automation is paused: held back: DNS already points at" in out, out
