"""Reconciling the controller's state with what DNS and the hosts say (issue 11, item 2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.controller.model import ControllerState
from orchestrator.controller.reconcile import Facts, reconcile

HOME = ControllerState("mx1", "mx2")
AFTER = ControllerState("mx2", "mx1", fenced=frozenset({"mx1"}))
UNFENCED = {"mx1": False, "mx2": False}


def facts(target: str | None, fenced: dict[str, bool | None] | None = None,
          serving: dict[str, bool] | None = None, mixed: bool = False,
          planned: bool = False) -> Facts:  # fmt: skip
    return Facts(target, mixed, fenced or UNFENCED, serving or {}, planned)


CASES = [
    # (id, state, facts, fence, unfence, repair to, in progress after, fenced after, note)
    ("all agree", HOME, facts("mx1"), (), (), None, None, set(), ""),
    ("after a failover, all agree", AFTER, facts("mx2", {"mx1": True, "mx2": False}),
     (), (), None, None, {"mx1"}, ""),
    ("DNS moved to the standby behind our back: adopt the move", HOME, facts("mx2"),
     (), (), None, "mx2", set(), "finishing that move"),
    ("DNS split between zones: compare-and-swap back", HOME, facts(None, mixed=True),
     (), (), "mx1", None, set(), "split"),
    ("DNS unreadable: nothing", HOME, facts(None), (), (), None, None, set(), ""),
    ("fenced old primary thawed and answers: re-fence", AFTER,
     facts("mx2", {"mx1": True, "mx2": False}, {"mx1": True}), ("mx1",), (), None, None,
     {"mx1"}, "answers a client port"),
    ("fenced old primary rebooted without its fence: re-fence", AFTER,
     facts("mx2", {"mx1": False, "mx2": False}), ("mx1",), (), None, None, {"mx1"},
     "lost its fence"),
    ("fenced old primary down: nothing to do yet", AFTER,
     facts("mx2", {"mx1": None, "mx2": False}), (), (), None, None, {"mx1"}, ""),
    ("the primary in the fenced set leaves it", replace(AFTER, fenced=frozenset({"mx1", "mx2"})),
     facts("mx2", {"mx1": True, "mx2": False}), (), (), None, None, {"mx1"},
     "removed from the fenced set"),
    ("the host DNS points at is never fenced: unfence", HOME,
     facts("mx1", {"mx1": True, "mx2": False}), (), ("mx1",), None, None, set(),
     "DNS points at it"),
    ("the primary, fenced by an aborted failover, comes back: unfence", HOME,
     facts("mx1", {"mx1": True, "mx2": False}, {"mx1": False}), (), ("mx1",), None, None,
     set(), "unfenced"),
    ("DNS unknown: a fenced primary is left alone", HOME,
     facts(None, {"mx1": True, "mx2": False}), (), (), None, None, set(), ""),
    ("never re-fence the host DNS points at", replace(HOME, fenced=frozenset({"mx2"})),
     facts("mx2", serving={"mx2": True}), (), (), None, "mx2", {"mx2"}, "finishing"),
    ("failover under way: DNS split is its business", replace(HOME, failover_in_progress="mx2"),
     facts(None, mixed=True), (), (), None, "mx2", set(), ""),
    ("planned move under way: DNS is its business", HOME, facts("mx2", planned=True),
     (), (), None, None, set(), ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "given", "fence", "unfence", "repair", "in_progress", "fenced", "note"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_reconcile(
    state: ControllerState,
    given: Facts,
    fence: tuple[str, ...],
    unfence: tuple[str, ...],
    repair: str | None,
    in_progress: str | None,
    fenced: set[str],
    note: str,
) -> None:
    result = reconcile(state, given)
    assert (result.fence, result.unfence, result.repair_dns_to) == (fence, unfence, repair)
    assert result.state.failover_in_progress == in_progress
    assert result.state.fenced == frozenset(fenced)
    assert note in " ".join(result.notes)
    if not note:
        assert result.notes == ()
