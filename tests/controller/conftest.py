"""Fixtures for the controller's lab tests: a deployed pair, the controller, a witness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mxlab.controlled import ControlledLab, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.state import LabState

from orchestrator.deploy import runner


@pytest.fixture(scope="session")
def deployed_pair(lab: LabState) -> LabState:
    """The mail pair and the sender, deployed (a no-op, seconds, when they already are)."""
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
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
