"""What operators asked for (`mxctl pause`, `resume`, `ack`), kept in a request store.

Kept apart from the loop's own state so neither overwrites the other: the loop reads
these each cycle and only ever consumes `ack`. Alone, a controller's store is its own
journal; in a controller cluster it is etcd (`orchestrator.cluster.requests`), so a
request made on any controller host reaches whichever controller leads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class RequestStore(Protocol):
    """Where operators' requests and planned-move intents are kept (keys -> strings), and
    where what happens to them is journaled."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...

    def record(
        self,
        at: datetime,
        kind: str,
        subject: str,
        status: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int: ...


class OperatorRequests:
    def __init__(self, store: RequestStore) -> None:
        self.journal = store

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
