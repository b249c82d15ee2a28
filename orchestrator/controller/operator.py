"""What operators asked for (`mxctl pause`, `resume`, `ack`), kept in the journal.

Kept apart from the loop's own state so neither overwrites the other: the loop reads
these each cycle and only ever consumes `ack`.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.controller.journal import Journal


class OperatorRequests:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def paused(self) -> bool:
        return self.journal.get("operator.paused") == "1"

    def set_paused(self, paused: bool, at: datetime, who: str) -> None:
        self.journal.put("operator.paused", "1" if paused else "0")
        verb = "paused" if paused else "resumed"
        self.journal.record(at, "operator", verb, "done", f"automatic failover {verb} by {who}")

    def request_ack(self, at: datetime, who: str) -> None:
        self.journal.put("operator.ack", at.isoformat())
        self.journal.record(at, "operator", "ack", "requested", f"anti-flap block acked by {who}")

    def take_ack(self) -> bool:
        if self.journal.get("operator.ack"):
            self.journal.put("operator.ack", "")
            return True
        return False
