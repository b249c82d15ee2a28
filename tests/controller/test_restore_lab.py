"""The harness's reset undoes every lab fault, so that a test that fails mid-fault does not
poison the next one."""

from __future__ import annotations

import pytest
from mxlab import control
from mxlab.controlled import ControlledLab

pytestmark = pytest.mark.lab


def test_restore_undoes_every_fault(harness: ControlledLab) -> None:
    control.fault("mx1", "down")
    control.fault("ns2", "lag", value="30")
    control.fault("mx2", "loss", "sender", "20%")
    control.fault("mx2", "cannot-act")
    control.fault("mx2", "disk-full")
    control.fault("sender", "clock", value="+60s")
    faulty = {r.name: r for r in control.status()}
    assert faulty["mx1"].silent and faulty["ns2"].lag == 30
    assert faulty["sender"].loss_with == {"mx2": 20} and faulty["sender"].clock_step == 60
    assert not faulty["mx2"].acts and faulty["mx2"].disk_full
    harness.restore()
    for row in control.status():
        assert row.running and not row.silent, row
        assert (row.lag, row.loss_with, row.acts, row.disk_full, row.clock_step) == (
            None,
            {},
            True,
            False,
            0,
        ), row
