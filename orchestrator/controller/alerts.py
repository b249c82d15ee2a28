"""Alert-class states: which are open this cycle, what changed, and telling the webhooks.

`current_alerts` (pure) names each alert-class state the cycle found; `transitions`
(pure) compares them with the open ones: a state is announced when it opens and when it
resolves, once each (deduplicated), and again only when it changes generation (each
failed failover attempt is news). The book keeps the open alerts in the journal, so a
restarted controller neither repeats nor forgets them, and a small thread posts to the
webhooks so a slow receiver never delays a cycle.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from orchestrator.controller.decision import Decision, Outcome
from orchestrator.controller.journal import Journal
from orchestrator.controller.model import ControllerState

log = logging.getLogger(__name__)
OPEN_KEY = "alerts.open"

OUTCOME_ALERTS = {
    Outcome.STANDBY_DEAD: "standby-dead",
    Outcome.NO_QUORUM: "no-quorum",
    Outcome.BOTH_DEAD: "both-dead",
    Outcome.BLOCKED: "blocked",
    Outcome.STANDBY_LAGGING: "standby-lagging",
    # A failover (new or resumed) the pause holds back: the reason says which and why.
    Outcome.PAUSED: "paused-failover-held",
}
# Reconcile's repairs (fences, DNS, backup MX) the pause holds back.
PAUSED_REPAIR_ALERT = "paused-repair-held"
PAUSE_ALERTS = (OUTCOME_ALERTS[Outcome.PAUSED], PAUSED_REPAIR_ALERT)


@dataclass(frozen=True)
class Alert:
    key: str
    reason: str
    generation: int = 0  # a new generation of an open alert is announced again
    since: str = ""


@dataclass(frozen=True)
class ReplicationFacts:
    lag_s: float | None
    broken: str | None  # why replication is broken (None: it works, or is unknown)


def current_alerts(
    decision: Decision,
    state: ControllerState,
    replication: ReplicationFacts,
    max_lag_s: float,
    extra: dict[str, str],
) -> dict[str, Alert]:
    found = {k: Alert(k, why) for k, why in extra.items()}
    key = OUTCOME_ALERTS.get(decision.outcome)
    if key is not None:
        found[key] = Alert(key, decision.reason)
    if state.failed_attempts:
        found["failover-aborted"] = Alert(
            "failover-aborted",
            f"{state.failed_attempts} failover attempt(s) failed in a row",
            state.failed_attempts,
        )
    if replication.broken is not None:
        found["replication-broken"] = Alert("replication-broken", replication.broken)
    if replication.lag_s is not None and replication.lag_s > max_lag_s:
        found["replication-lagging"] = Alert(
            "replication-lagging",
            f"the standby lags {replication.lag_s:.0f} s > {max_lag_s:.0f} s allowed",
        )
    return found


def held_by_pause(held: tuple[str, ...]) -> dict[str, str]:
    """The alert for what a paused reconcile left alone (none when it left nothing)."""
    if not held:
        return {}
    return {PAUSED_REPAIR_ALERT: f"automation is paused: held back: {'; '.join(held)}"}


def transitions(
    open_: dict[str, Alert], current: dict[str, Alert], now: datetime
) -> tuple[list[Alert], list[Alert], dict[str, Alert]]:
    """(opened or renewed, resolved, the open set after this cycle)."""
    opened, still = [], {}
    for key, alert in sorted(current.items()):
        before = open_.get(key)
        if before is None or alert.generation != before.generation:
            alert = Alert(key, alert.reason, alert.generation, now.isoformat())
            opened.append(alert)
        else:
            alert = Alert(key, alert.reason, alert.generation, before.since)
        still[key] = alert
    resolved = [a for key, a in sorted(open_.items()) if key not in current]
    return opened, resolved, still


class AlertBook:
    def __init__(self, journal: Journal, webhooks: tuple[str, ...], timeout: float) -> None:
        self.journal = journal
        self.webhooks, self.timeout = webhooks, timeout
        self._outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._sender = threading.Thread(target=self._send_forever, daemon=True, name="alerts")
        self._sender.start()
        self.delivered = 0

    def open_alerts(self) -> dict[str, Alert]:
        raw = self.journal.get(OPEN_KEY)
        if not raw:
            return {}
        return {k: Alert(**v) for k, v in json.loads(raw).items()}

    def update(self, current: dict[str, Alert], now: datetime, context: dict[str, Any]) -> None:
        opened, resolved, still = transitions(self.open_alerts(), current, now)
        for alert, status in [(a, "open") for a in opened] + [(a, "resolved") for a in resolved]:
            self.journal.record(now, "alert", alert.key, status, alert.reason,
                                {"since": alert.since, "generation": alert.generation})  # fmt: skip
            log.warning("ALERT %s %s: %s", alert.key, status, alert.reason)
            self._outbox.put({"event": "alert", "alert": alert.key, "state": status,
                              "reason": alert.reason, "since": alert.since,
                              "at": now.isoformat(), **context})  # fmt: skip
        if opened or resolved:
            self.journal.put(OPEN_KEY, json.dumps({k: a.__dict__ for k, a in still.items()}))

    def _send_forever(self) -> None:
        while True:
            payload = self._outbox.get()
            for url in self.webhooks:
                try:
                    httpx.post(url, json=payload, timeout=self.timeout).raise_for_status()
                    self.delivered += 1
                except httpx.HTTPError as exc:
                    log.warning("alert webhook %s failed: %s", url, exc)
            self._outbox.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until queued alerts went out: for tests and shutdown."""
        done = threading.Event()

        def wait() -> None:
            self._outbox.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)
