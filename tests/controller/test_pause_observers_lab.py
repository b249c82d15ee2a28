"""A paused controller on the lab: a dead primary is alerted, and nothing acts; then a
lost witness is alerted by name, with why.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from mxlab import control
from mxlab.controlled import MXCTL, ControlledLab, dump, mx_at

from tests.controller.test_failover_lab import INTERVAL, MX1, THRESHOLD, healthy

pytestmark = pytest.mark.lab


def _alert(status: dict[str, Any], key: str) -> str | None:
    return next((a["reason"] for a in status["alerts"] if a["key"] == key), None)


def test_paused_a_dead_primary_is_alerted_nothing_acts_and_a_lost_witness_is_named(
    harness: ControlledLab,
) -> None:
    h = harness
    healthy(h)
    subprocess.run([MXCTL, "pause", "--config", str(h.config_path)], check=True)
    control.fault("mx1", "kill")
    status = h.wait_status(lambda s: _alert(s, "paused-failover-held"), 30, "the pause alert")
    assert "mx1.example.test dead for" in status["held_by_pause"][0], status["held_by_pause"]
    time.sleep(INTERVAL * (THRESHOLD + 2))
    assert all(mx_at(ns) == MX1 for ns in h.nameservers())
    events = h.journal_events()
    assert not any(e.kind == "step" for e in events), dump(events)
    assert h.status()["primary"] == "mx1.example.test"

    h.stop("witness")
    status = h.wait_status(lambda s: _alert(s, "observer-lost:sender"), 30, "sender lost")
    lost = _alert(status, "observer-lost:sender") or ""
    assert lost.startswith("observer lost: sender: "), lost
    rows = {r["observer"]: r for r in status["observers"]}
    assert rows["sender"]["voting"] is False, rows
    assert rows["sender"]["abstained_cycles"] >= THRESHOLD, rows
