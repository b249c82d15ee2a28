"""Reconcile the controller's state with the world, every cycle. Pure, tested from a table.

The controller's memory (primary, standby, fenced set) can disagree with the world: a
failover aborted after DNS moved, a crash between two steps, a fenced host rebooted
without its fence, a human edit. Level-triggered rules, applied each cycle before the
decision, say what to do about each difference:

- the host DNS points at (every owned record) is the primary's: it is never fenced, and
  the primary is never in the fenced set;
- DNS pointing at the standby, with no move under way, is a move to finish: adopt it;
- DNS split between the hosts, with no move under way, is repaired to the primary
  (compare-and-swap);
- a host in the fenced set that answers a client port, or whose fence is gone, is fenced
  again at once;
- the standby is listed as a lower-priority (backup) MX while it is healthy and not
  fenced, so a remote MTA that finds the primary dead delivers to it in the same attempt;
  it is withdrawn once fenced or dead for `failure_threshold` cycles while the primary
  serves (a standby that fails one probe keeps its listing: a dead backup MX costs a
  sender nothing while the primary serves, a flapping one would cost a DNS write a cycle).

While automation is paused none of this is done (Patroni's pause: no automatic action at
all, but keep reporting): the state is left as it was and each difference found is
returned in `held`, for the alert and `mxctl status` to say what the pause holds back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orchestrator.controller.model import ControllerState


@dataclass(frozen=True)
class Facts:
    dns_target: str | None  # the host every owned record points at (None: split/unknown)
    dns_mixed: bool  # owned records point at different hosts (or elsewhere)
    fenced_on_host: dict[str, bool | None]  # None: the host could not be asked
    serving: dict[str, bool]  # answered a client port to the controller this cycle
    planned_run: bool = False  # a planned move is under way: its own steps move DNS
    dns_backup: str | None = None  # the host every owned MX lists as backup (None: none)
    failure_threshold: int = 3  # cycles of failure before the standby's listing goes


@dataclass(frozen=True)
class Reconciliation:
    state: ControllerState
    fence: tuple[str, ...] = ()
    unfence: tuple[str, ...] = ()
    repair_dns_to: str | None = None
    notes: tuple[str, ...] = ()  # one sentence per difference acted on
    # Rewrite the MX set to the primary with this backup (None: no backup); unset: leave it.
    set_backup: tuple[str | None] | None = None
    held: tuple[str, ...] = ()  # paused: the differences found and left alone, one sentence each


def reconcile(state: ControllerState, facts: Facts) -> Reconciliation:
    found = _reconcile(state, facts)
    if state.paused and found.notes:
        return Reconciliation(state, held=found.notes)
    return found


def _reconcile(state: ControllerState, facts: Facts) -> Reconciliation:
    notes: list[str] = []
    fence: list[str] = []
    unfence: list[str] = []
    repair: str | None = None
    moving = state.failover_in_progress is not None or facts.planned_run
    if state.primary in state.fenced and not moving:
        state = replace(state, fenced=state.fenced - {state.primary})
        notes.append(f"{state.primary} is the primary: removed from the fenced set")
    target = facts.dns_target
    if not moving and target == state.standby:
        state = replace(state, failover_in_progress=state.standby)
        notes.append(
            f"DNS already points at the standby {state.standby}: finishing that move "
            f"(state named {state.primary})"
        )
        moving = True
    elif not moving and facts.dns_mixed:
        repair = state.primary
        notes.append(f"owned records are split between hosts: compare-and-swap back to "
                     f"{state.primary}")  # fmt: skip
    if not moving and target == state.primary and facts.fenced_on_host.get(target) is True:
        unfence.append(target)
        notes.append(f"{target} is fenced but DNS points at it: unfenced")
    for host in sorted(state.fenced):
        if host in (target, state.failover_in_progress) or host == state.primary:
            continue
        serving = facts.serving.get(host, False)
        lost = facts.fenced_on_host.get(host) is False
        if serving or lost:
            fence.append(host)
            why = "answers a client port" if serving else "has lost its fence"
            notes.append(f"{host} is fenced but {why}: fenced again")
    set_backup = None
    if not moving and repair is None and target == state.primary:
        wanted = backup_mx(state, facts)
        if wanted != facts.dns_backup:
            set_backup = (wanted,)
            notes.append(
                f"standby {state.standby} listed as backup MX"
                if wanted
                else f"backup MX {facts.dns_backup} withdrawn: "
                + ("fenced" if facts.dns_backup in state.fenced else "dead or not the standby")
            )
    return Reconciliation(state, tuple(fence), tuple(unfence), repair, tuple(notes), set_backup)


def backup_mx(state: ControllerState, facts: Facts) -> str | None:
    """Which host the MX set should list as backup, given what it lists now."""
    standby = state.standby
    if standby in state.fenced or standby == state.primary:
        return None
    if state.failures(state.primary):
        # The primary is failing: what happens to the MX set is the failover's business
        # (or, both hosts down, nobody's): no listing changes under it.
        return facts.dns_backup
    failed = state.failures(standby)
    if facts.dns_backup == standby:
        return standby if failed < facts.failure_threshold else None
    return standby if failed == 0 else None
