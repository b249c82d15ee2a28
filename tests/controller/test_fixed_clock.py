"""A cycle's reads end at its deadline: a frozen primary (TCP accepted, no greeting) fails
the controller's probes by then, and a hung standby view is neither waited for nor asked
again while under way (no lab needed: loopback listeners and refused addresses)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.controller import world
from orchestrator.controller.model import Health, ObserverReport
from orchestrator.controller.observe import host_health, probe_pair, probe_settings
from orchestrator.probes.result import ErrorClass
from orchestrator.remote import SshTarget
from tests.controller.test_loop_local import _controller
from tests.fakes import FakeClock


@pytest.fixture
def frozen_port() -> Iterator[int]:
    """A listener that never accepts: the kernel completes the handshake, nobody greets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_a_frozen_primary_fails_the_probes_at_the_cycle_deadline(
    tmp_path: Path, frozen_port: int
) -> None:
    config = _controller(tmp_path, standby_observer=False).config
    settings = probe_settings(config.probes, config.dns, None, "mx1.example.test",
                              "mx2.example.test")  # fmt: skip
    # Probe timeouts far beyond the cycle: only the deadline can end these probes.
    long = replace(settings.timeouts, smtp=60.0, imap=60.0)
    ports = replace(settings.ports, smtp=frozen_port, imaps=frozen_port)
    hosts = tuple(replace(h, address="127.0.0.1") for h in settings.hosts)
    frozen = replace(settings, timeouts=long, ports=ports, hosts=hosts)
    results = asyncio.run(probe_pair(frozen, FakeClock(), within=0.3))
    for fqdn, found in results.items():
        assert [r.probe for r in found] == ["smtp", "imaps"]
        assert all(r.error is ErrorClass.TIMEOUT and r.step == "deadline" for r in found)
        assert "cycle" in found[0].message
        assert host_health(found) is Health.FAILED, fqdn


def test_a_hung_standby_view_is_not_waited_for_nor_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = _controller(tmp_path, standby_observer=True)
    release, calls = threading.Event(), []

    def hung_standby(
        observer: str, standby: SshTarget, primary: str, address: str, timeout: float
    ) -> tuple[ObserverReport, bool | None]:
        calls.append(primary)
        release.wait(60)
        return ObserverReport(observer, {primary: Health.FAILED}, note="no greeting"), True

    monkeypatch.setattr(world, "standby_report", hung_standby)
    first = controller.cycle()
    assert "only 1 of 2 observers" in first, first
    note = {r["observer"]: r["note"] for r in controller.status()["observers"]}["standby:mx2"]
    assert "has not answered" in note, note
    second = controller.cycle()
    assert "only 1 of 2 observers" in second, second
    assert calls == ["mx1.example.test"]  # still under way: not asked a second time
    # Its answer, come between cycles, is the standby's vote in the next cycle.
    release.set()
    flight = controller.world_reader.standby._flight
    assert flight is not None
    flight[0].result(timeout=10)
    third = controller.cycle()
    assert "failed for 1 of 3 cycles by 2 of 2 voting observers" in third, third
    votes = {r["observer"]: r["votes"] for r in controller.status()["observers"]}
    assert votes["standby:mx2"]["mx1.example.test"] == "failed"
    controller.world_reader.close()
