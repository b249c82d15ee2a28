"""Carry out a failover (or switchover) as journaled, idempotent, resumable steps.

Each step is journaled as started before it acts and as done (with its evidence) after.
On restart after a crash, steps journaled done are skipped and the first unfinished one
runs again, so every step must be idempotent (DNS rewrites are compare-and-swap where
"already the desired state" counts as success). A step that fails aborts the run when it
is marked `abort_on_failure` (pre-hooks, fencing that must succeed, the DNS rewrite);
otherwise the failure is journaled and the run goes on (notifications).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.controller.journal import Journal
from orchestrator.errors import MxctlError

log = logging.getLogger(__name__)

Evidence = dict[str, Any]


class StepFailed(MxctlError):
    """A step could not do its job; the message says why, `evidence` what was seen."""

    def __init__(self, message: str, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[], Evidence]
    why: str  # one sentence for the journal
    abort_on_failure: bool = True


@dataclass
class RunResult:
    run_id: str
    status: str  # done | aborted
    steps_run: list[str] = field(default_factory=list)
    steps_skipped: list[str] = field(default_factory=list)
    # Steps that failed without aborting (abort_on_failure=False): name -> why. The run is
    # done, yet whoever reports it must say these too.
    steps_failed: dict[str, str] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    refused: bool = False  # the gate stopped it before a step: nothing of it is to undo


class StepGate(Protocol):
    """A controller cluster's part in a run (a lone controller has none): asked before
    each step whether this controller may still act, in the term the run began in (a
    reason refuses the step), and told of the run's start, of each step done and of its
    end, so another controller can resume the run at its next step."""

    def before_step(self, step: str) -> str | None: ...

    def run_started(self, run_id: str, kind: str, from_host: str, to_host: str) -> None: ...

    def step_done(self, run_id: str, step: str) -> None: ...

    def run_finished(self, run_id: str) -> None:
        """The run is over here (done, aborted or refused): its term no longer binds."""
        ...

    def evidence(self) -> Evidence:
        """Added to each step's evidence: who acted, in which term."""
        ...


TERM_RENEW_EVERY = 1.0  # s; well inside any lease (`[cluster] lease_ttl` >= 2 intervals)


def pause_keeping_term(clock: Clock, seconds: float, gate: StepGate | None, step: str) -> None:
    """Sleep `seconds` inside a step. In a controller cluster, ask the gate again every
    second meanwhile: its check renews this controller's lease, so a step that waits (a
    TTL, a queue, convergence: minutes in a planned move) does not end the term merely by
    its length. The answer is not acted on here: a term lost anyway (etcd cut off) makes
    the check before the next step refuse it, as always. Same thread as the run: no
    background renewal to race the loop's own check."""
    if gate is None:
        clock.sleep(seconds)
        return
    end = clock.monotonic() + seconds
    while (left := end - clock.monotonic()) > 0:
        clock.sleep(min(TERM_RENEW_EVERY, left))
        gate.before_step(step)


class Runner:
    def __init__(
        self, journal: Journal, clock: Clock = SYSTEM_CLOCK, gate: StepGate | None = None
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.gate = gate

    def execute(
        self, run_id: str, kind: str, from_host: str, to_host: str, steps: list[Step]
    ) -> RunResult:
        try:
            return self._execute(run_id, kind, from_host, to_host, steps)
        finally:
            if self.gate is not None:
                self.gate.run_finished(run_id)

    def _execute(
        self, run_id: str, kind: str, from_host: str, to_host: str, steps: list[Step]
    ) -> RunResult:
        journal, now = self.journal, self.clock.now
        journal.start_run(now(), run_id, kind, from_host, to_host)
        if self.gate is not None:
            self.gate.run_started(run_id, kind, from_host, to_host)
        result = RunResult(run_id, "done")
        for step in steps:
            if journal.step_status(run_id, step.name) in ("done", "skipped"):
                result.steps_skipped.append(step.name)
                continue
            refused = self.gate.before_step(step.name) if self.gate is not None else None
            if refused is not None:
                # Nothing acted: the run stops here, and whoever may act resumes it.
                reason = f"{step.name} not run: {refused}"
                journal.record(now(), "step", step.name, "failed", reason, run_id=run_id)
                journal.finish_run(now(), run_id, "aborted")
                result.status, result.failed_step, result.error = "aborted", step.name, reason
                result.refused = True
                return result
            # The term is on "started" too: a step that began acting in a term counts as
            # that term's action, finished or not (what a check for overlapping terms needs).
            acting = self.gate.evidence() if self.gate is not None else {}
            journal.record(now(), "step", step.name, "started", step.why, acting, run_id)
            try:
                evidence = step.action()
            except Exception as exc:  # a step must never take the controller down
                evidence = exc.evidence if isinstance(exc, StepFailed) else {}
                reason = f"{step.name} failed: {exc}"
                journal.record(now(), "step", step.name, "failed", reason, evidence, run_id)
                log.error("%s run %s: %s", kind, run_id, reason)
                if step.abort_on_failure:
                    journal.finish_run(now(), run_id, "aborted")
                    result.status, result.failed_step, result.error = "aborted", step.name, reason
                    return result
                result.steps_failed[step.name] = reason
                continue
            if self.gate is not None:
                evidence = {**evidence, **self.gate.evidence()}
            journal.record(now(), "step", step.name, "done", step.why, evidence, run_id)
            if self.gate is not None:
                self.gate.step_done(run_id, step.name)
            result.steps_run.append(step.name)
        journal.finish_run(now(), run_id, "done")
        return result
