"""Reconciling the controller's state with what DNS and the hosts say."""

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
          planned: bool = False, backup: str | None = "auto") -> Facts:  # fmt: skip
    # By default the MX set already lists what the backup rule wants (mx2 behind mx1 at
    # home), so the cases of this table see no backup change; BACKUP_CASES test that rule.
    listed = ("mx2" if target == "mx1" else None) if backup == "auto" else backup
    return Facts(target, mixed, fenced or UNFENCED, serving or {}, planned, listed, 3)


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


SICK = replace(HOME, failed_cycles={"mx2": 1})
DEAD = replace(HOME, failed_cycles={"mx2": 3})
BACKUP_CASES = [
    # (id, state, facts, MX rewrite to (backup,) or None, note)
    ("healthy standby not listed: publish it", HOME, facts("mx1", backup=None), ("mx2",),
     "listed as backup MX"),
    ("healthy standby listed: nothing", HOME, facts("mx1", backup="mx2"), None, ""),
    ("listed standby failed one cycle: kept (no flapping writes)", SICK,
     facts("mx1", backup="mx2"), None, ""),
    ("listed standby dead for the threshold: withdrawn", DEAD, facts("mx1", backup="mx2"),
     (None,), "withdrawn"),
    ("failing standby is not published", SICK, facts("mx1", backup=None), None, ""),
    ("fenced standby listed: withdrawn", replace(HOME, fenced=frozenset({"mx2"})),
     facts("mx1", {"mx1": False, "mx2": True}, backup="mx2"), (None,), "fenced"),
    ("after a failover the fenced old primary is never published", AFTER,
     facts("mx2", {"mx1": True, "mx2": False}, backup=None), None, ""),
    ("a failover under way owns DNS", replace(HOME, failover_in_progress="mx2"),
     facts("mx1", backup=None), None, ""),
    ("a planned move owns DNS", HOME, facts("mx1", planned=True, backup=None), None, ""),
    ("DNS split: repaired first, the backup next cycle", HOME,
     facts(None, mixed=True, backup=None), None, "split"),
    ("DNS unreadable: nothing", HOME, facts(None, backup=None), None, ""),
    ("both failing: the listing is left alone (no DNS change)",
     replace(HOME, failed_cycles={"mx1": 1, "mx2": 3}), facts("mx1", backup="mx2"), None, ""),
    ("primary failing, standby healthy: no publishing under a failover",
     replace(HOME, failed_cycles={"mx1": 2}), facts("mx1", backup=None), None, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "given", "rewrite", "note"),
    [c[1:] for c in BACKUP_CASES],
    ids=[c[0] for c in BACKUP_CASES],
)
def test_backup_mx_follows_the_standby(
    state: ControllerState, given: Facts, rewrite: tuple[str | None] | None, note: str
) -> None:
    result = reconcile(state, given)
    assert result.set_backup == rewrite
    assert note in " ".join(result.notes)
    if not note:
        assert result.notes == ()


PAUSED_HOME, PAUSED_AFTER = replace(HOME, paused=True), replace(AFTER, paused=True)
PAUSED_CASES = [
    # (id, state, facts, words in what is held back; "" when nothing is)
    ("paused, all agree: nothing held", PAUSED_HOME, facts("mx1"), ""),
    ("paused: a DNS move behind our back is not adopted", PAUSED_HOME, facts("mx2"),
     "finishing that move"),
    ("paused: a thawed fenced host is not fenced again", PAUSED_AFTER,
     facts("mx2", {"mx1": True, "mx2": False}, {"mx1": True}), "fenced again"),
    ("paused: a fenced primary is not unfenced", PAUSED_HOME,
     facts("mx1", {"mx1": True, "mx2": False}), "unfenced"),
    ("paused: split DNS is not repaired", PAUSED_HOME, facts(None, mixed=True),
     "compare-and-swap"),
    ("paused: the backup MX is not withdrawn", replace(PAUSED_HOME, failed_cycles={"mx2": 3}),
     facts("mx1", backup="mx2"), "withdrawn"),
    ("paused: the fenced set is not edited", replace(PAUSED_AFTER, fenced=frozenset({"mx1",
     "mx2"})), facts("mx2", {"mx1": True, "mx2": False}), "removed from the fenced set"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "given", "held"), [c[1:] for c in PAUSED_CASES], ids=[c[0] for c in PAUSED_CASES]
)
def test_paused_reconcile_acts_on_nothing_and_says_what_it_holds(
    state: ControllerState, given: Facts, held: str
) -> None:
    result = reconcile(state, given)
    assert result.state == state
    assert (result.fence, result.unfence, result.repair_dns_to, result.set_backup) == (
        (), (), None, None)  # fmt: skip
    assert result.notes == ()
    assert held in " ".join(result.held)
    assert bool(result.held) == bool(held)
    assert reconcile(replace(state, paused=False), given).notes == result.held
