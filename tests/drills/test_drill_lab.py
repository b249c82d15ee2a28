"""`mxctl drill` on the lab: switchover + switchback with mail flowing through the MX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mxlab.controlled import ControlledLab, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.state import LabState

from orchestrator.deploy import runner
from orchestrator.drills import record

pytestmark = pytest.mark.lab

OLD_TTL, LOW_TTL = 30, 5  # as bench/switchover.py: a drill in about two minutes


def test_failover_drill_passes_loses_nothing_and_is_recorded(lab: LabState, tmp_path: Path) -> None:
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    assert result.ok, result.failed()
    path = write_config(lab, tmp_path, ttl=OLD_TTL)
    path.write_text(path.read_text() + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n")
    harness = ControlledLab(lab, tmp_path, path)
    harness.restore()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.main", "drill", "--config", str(path),
             "--json"],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        figures = json.loads(proc.stdout[proc.stdout.index("{") :])
        assert figures["result"] == "passed", figures
        assert figures["messages_lost"] == 0 and figures["messages_accepted"] > 20
        assert figures["switchover_s"] and figures["switchback_s"]
        kinds = [(e.kind, e.subject, e.status) for e in harness.journal_events()]
        assert ("drill", "failover", "passed") in kinds
        assert record.last_result(tmp_path / "state") == figures
    finally:
        harness.restore()
