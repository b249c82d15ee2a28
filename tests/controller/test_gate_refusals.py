"""What a controller that may no longer act (a cluster's ex-leader) leaves behind.

- A planned run refused by the gate leaves no run mark: the controller would otherwise
  never again reconcile DNS, adopt a move or keep the backup MX once it leads.
- A failed failover's roll-back (unfencing the old primary) asks the gate first: a
  controller whose term is over touches no host.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import parse_config
from orchestrator.controller import switching
from orchestrator.controller.carry_out import RUN_KEY, carry_out
from orchestrator.controller.decision import Action, Decision, Outcome
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState, Policy
from orchestrator.controller.planned import PlannedMove
from tests.fakes import FakeClock

from .test_config import DNS

MX1, MX2 = "mx1.example.test", "mx2.example.test"
FAST = DNS + "\n[policy]\nfailover_deadline = 2\n"


class Gate:
    """Refuses the steps named in `refuse`, as a cluster member whose term is over."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse
        self.asked: list[str] = []

    def before_step(self, step: str) -> str | None:
        self.asked.append(step)
        if self.refuse is None or step in self.refuse:
            return "ctl2 leads (term 9)"
        return None

    def run_started(self, run_id: str, kind: str, from_host: str, to_host: str) -> None:
        pass

    def step_done(self, run_id: str, step: str) -> None:
        pass

    def run_finished(self, run_id: str) -> None:
        pass

    def evidence(self) -> dict[str, object]:
        return {"term": 8}


def test_a_refused_planned_run_leaves_no_run_mark_and_the_intent_pending(
    tmp_path: Path,
) -> None:
    config = parse_config(FAST, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    journal, clock = Journal(tmp_path / "journal.db"), FakeClock()
    state = ControllerState(MX1, MX2)
    planned = PlannedMove("switchover", MX2)
    intent_id = switching.request(journal, planned, clock.now(), "op", clock.now(), state, 3600)
    result, after = switching.execute(config, journal, clock, planned, state, lambda s: None,
                                      intent_id, Gate(), journal)  # fmt: skip
    assert result.refused and after == state
    assert journal.get(switching.RUN_KEY) == ""
    found = switching.pending(journal)
    assert found is not None and found[0] == intent_id and not found[1].started


def test_a_failed_failovers_roll_back_asks_the_gate_first(tmp_path: Path) -> None:
    config = parse_config(FAST, environ={"TSIG": "c2VjcmV0"}, required=("dns",))
    journal, clock = Journal(tmp_path / "journal.db"), FakeClock()
    # A failover resumed after its fence: the rewrite fails (no nameserver here), DNS did
    # not move, so the old primary would be unfenced; by now the term is over.
    run_id = "failover-1"
    journal.put(RUN_KEY, run_id)
    journal.start_run(clock.now(), run_id, "failover", MX1, MX2)
    for step in ("pre-hooks", "check-new-primary", "fence-old-primary"):
        journal.record(clock.now(), "step", step, "done", "earlier", {}, run_id)
    before = ControllerState(MX1, MX2, failover_in_progress=MX2)
    decision = Decision(Outcome.RESUME_FAILOVER, Action.FAILOVER, "resume", before, MX2)
    gate = Gate({"roll-back"})
    carried = carry_out(config, journal, clock, Policy(), before, decision, lambda s: None, gate)
    assert carried.result.failed_step == "rewrite-dns", carried.result.error
    assert "roll-back" in gate.asked
    events = [(e.subject, e.status) for e in journal.events(run_id=run_id)]
    assert ("roll-back", "failed") in events
    assert not any(subject == "unfence-old-primary" for subject, _ in events), events
    assert "left as it is" in carried.sentence
