"""Fixtures for the controller's lab tests: a deployed pair, the controller, a witness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.deploy import runner
from orchestrator.lab.controlled import ControlledLab, write_config
from orchestrator.lab.state import LabState


@pytest.fixture(scope="session")
def deployed_pair(lab: LabState) -> LabState:
    """The mail pair and the sender, deployed (a no-op, seconds, when they already are)."""
    result = runner.run_deploy("inventories/lab.py", (runner.MAIL_DEPLOY, runner.SENDER_DEPLOY))
    assert result.ok, f"deploy failed: {result.failed()}\n{result.stderr[-3000:]}"
    return lab


@pytest.fixture
def harness(deployed_pair: LabState, tmp_path: Path) -> Iterator[ControlledLab]:
    h = ControlledLab(deployed_pair, tmp_path, write_config(deployed_pair, tmp_path))
    h.restore()  # from whatever the last user left (`make demo` leaves it failed over)
    try:
        yield h
    finally:
        h.restore()
