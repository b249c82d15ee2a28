"""The order of a planned move's steps: the table an operator reads in `--dry-run`.

The second convergence comes after the hold (and the fence), when the old primary has
had its last mail from caches that still named it; it cannot undo a DNS change already
made, so its failure is reported without aborting the run (TTLs are still restored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.controller.failover import Move
from orchestrator.controller.journal import Journal
from orchestrator.controller.planned import PlannedMove, PlannedSteps, ttl_to_restore
from tests.fakes import FakeClock

from .test_config import DNS

BEFORE_SWITCH = [
    "check-new-primary",
    "check-new-primary-certificate",
    "converge",
    "drain-old-primary",
    "lower-ttl",
    "wait-old-ttl",
    "rewrite-dns",
    "verify-dns",
    "hold-old-primary",
]
AFTER_SWITCH = ["converge-after", "restore-ttl", "verify-restored"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("switchover", [*BEFORE_SWITCH, "fence-old-primary", *AFTER_SWITCH]),
        ("switchback", [*BEFORE_SWITCH, *AFTER_SWITCH]),
    ],
)
def test_planned_steps_converge_again_once_the_old_primary_had_its_last_mail(
    tmp_path: Path, kind: str, expected: list[str]
) -> None:
    config = parse_config(DNS, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    steps = PlannedSteps(config, FakeClock(), Journal(tmp_path / "journal.db"), "run-1")
    move = Move(kind, "mx1.example.test", "mx2.example.test", "test", False)
    planned = steps.planned_steps(PlannedMove(kind, "mx2.example.test"), move)
    assert [s.name for s in planned] == expected
    aborting = {s.name for s in planned if s.abort_on_failure}
    # Everything up to the DNS rewrite may stop the move; after it, only what must hold
    # for the pair to be as recorded (the hold's drain, the fence, the restored TTLs).
    assert "converge" in aborting and "converge-after" not in aborting
    assert {"restore-ttl", "verify-restored"} <= aborting


@pytest.mark.parametrize(
    ("served", "configured", "low", "restored", "why"),
    [
        (300, 300, 30, 300, "the usual case: what was served comes back"),
        (3600, 300, 30, 3600, "an operator's longer TTL at the provider is kept"),
        (120, 300, 30, 120, "a shorter one too: it was not lowered by us"),
        (30, 300, 30, 300, "already at the low TTL: an earlier start lowered it"),
        (5, 300, 30, 300, "below it: lowered by an earlier start with another low_ttl"),
        (30, 30, 30, 30, "the configured TTL is the low one: nothing to tell apart"),
        (0, 300, 30, 300, "not served at all (a record to create): the configured TTL"),
    ],
)
def test_ttl_to_restore(served: int, configured: int, low: int, restored: int, why: str) -> None:
    assert ttl_to_restore(served, configured, low) == restored, why
