"""A planned move's DNS steps: the TTL choreography around the compare-and-swap rewrite.

The owned records' TTLs are lowered, one old TTL is waited out (every cache then holds
the short TTL), DNS is rewritten to the new primary and verified at every authoritative
server, and the TTLs served before the lowering come back at the end. A move stopped
before its rewrite gets the old TTLs back onto the records as they are (`restore_in_place`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.failover import FailoverSteps
from orchestrator.controller.journal import Journal
from orchestrator.controller.runner import Evidence, StepFailed, StepGate, pause_keeping_term
from orchestrator.dns.factory import make_verifier
from orchestrator.dns.plan import Plan, apply_plan, desired_rrsets
from orchestrator.dns.records import Change, RRset


def ttl_to_restore(served: int, configured: int, low: int) -> int:
    """The TTL a record gets back once the move is done: the one served before the
    lowering. A served TTL already at or below `low` is not the usual one but a lowering
    by an earlier start of this move (cut off by a crash, or by a cluster leader's death:
    the next leader runs the move again from its first step), so the configured TTL is
    restored instead; it is then also the old TTL waited out, which is the safe side."""
    return served if served > low else max(served, configured)


class PlannedDns(FailoverSteps):
    def __init__(
        self,
        config: MxctlConfig,
        clock: Clock,
        journal: Journal,
        run_id: str,
        gate: StepGate | None = None,
    ) -> None:
        super().__init__(config, clock)
        self.journal = journal
        self.run_id = run_id
        self.gate = gate  # a controller cluster's: its term is renewed while steps wait

    def _pause(self, seconds: float, step: str) -> None:
        pause_keeping_term(self.clock, seconds, self.gate, step)

    def _apply(self, mx_host: str, wanted: list[RRset]) -> Evidence:
        provider = self.provider()
        changes, unchanged = [], []
        for want in wanted:
            current = provider.read(want.name, want.rtype)
            if current.serves_as(want):
                unchanged.append(current)
            else:
                changes.append(Change(current, want))
        plan = Plan(mx_host, tuple(sorted(changes, key=Change.sort_key)), tuple(unchanged))
        results = apply_plan(plan, self.config.dns, provider, self.deadline())
        return {"plan": plan.to_json(), "results": [r.to_json() for r in results]}

    def lower_ttl(self) -> Evidence:
        provider, low = self.provider(), self.config.maintenance.low_ttl
        records = self.config.dns.records
        current = [provider.read(r.name, r.rtype) for r in records]
        old_ttls = {
            f"{c.name} {c.rtype}": ttl_to_restore(c.ttl, r.ttl, low)
            for c, r in zip(current, records, strict=True)
        }
        wanted = [replace(c, ttl=min(c.ttl, low)) for c in current]
        mx = next((c.mx_targets()[0][1] for c in current if c.rtype == "MX" and c.exists), "")
        evidence = self._apply(mx, wanted)
        return {
            **evidence,
            "old_ttls": old_ttls,
            "max_old_ttl": max(old_ttls.values(), default=0),
            "lowered_at": self.clock.now().isoformat(),
        }

    def lowered(self) -> Evidence | None:
        """The lowering's evidence in this run (None: the TTLs were not lowered)."""
        for event in self.journal.events(limit=1000, run_id=self.run_id):
            if event.subject == "lower-ttl" and event.status == "done":
                return event.evidence
        return None

    def _lowered(self) -> Evidence:
        found = self.lowered()
        if found is None:
            raise StepFailed("lower-ttl is not journaled as done for this run")
        return found

    def wait_old_ttl(self) -> Evidence:
        lowered = self._lowered()
        since = datetime.fromisoformat(lowered["lowered_at"])
        wait = float(lowered["max_old_ttl"]) - (self.clock.now() - since).total_seconds()
        if wait > 0:
            self._pause(wait, "wait-old-ttl")
        return {"waited_s": max(0.0, wait), "old_ttl": lowered["max_old_ttl"]}

    def _wanted(self, host: str, ttl: int | None, backup: str | None) -> list[RRset]:
        wanted = desired_rrsets(self.config.dns, host, backup)
        if ttl is not None:
            return [replace(w, ttl=ttl) for w in wanted]
        old = self._lowered()["old_ttls"]
        return [replace(w, ttl=int(old.get(f"{w.name} {w.rtype}", w.ttl))) for w in wanted]

    def rewrite_to(self, host: str, ttl: int | None, backup: str | None = None) -> Evidence:
        return self._apply(host, self._wanted(host, ttl, backup))

    def restore_in_place(self) -> Evidence:
        """The TTLs served before the lowering, put back on the records as they are now
        (a move stopped before its rewrite: the data is the old primary's, untouched)."""
        old = self._lowered()["old_ttls"]
        provider = self.provider()
        current = [provider.read(r.name, r.rtype) for r in self.config.dns.records]
        wanted = [
            replace(c, ttl=int(old.get(f"{c.name} {c.rtype}", c.ttl))) for c in current if c.exists
        ]
        mx = next((c.mx_targets()[0][1] for c in current if c.rtype == "MX" and c.exists), "")
        return {**self._apply(mx, wanted), "restored_ttls": old}

    def verify_at(self, host: str, ttl: int | None, backup: str | None = None) -> Evidence:
        verifier = make_verifier(self.config.dns, self.provider(), self.clock)
        report = verifier.wait(self._wanted(host, ttl, backup), self.deadline())
        if not report.ok:
            raise StepFailed(
                f"authoritative servers disagree at the deadline: {report.summary()}",
                report.to_json(),
            )
        return report.to_json()
