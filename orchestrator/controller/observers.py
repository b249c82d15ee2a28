"""Which observers vote on the primary, which abstain and why, and when one is lost.

The quorum counts only the observers that vote (see quorum.py), so a lost observer can
neither block nor cause a failover; but it shrinks the quorum without a word. With both
witnesses gone, the controller and the standby (which often share a network) decide
alone. So an observer that abstains for as many cycles as it takes to call a host dead
is lost: an alert names it and why, and says when those still voting are fewer than a
majority of the configured observers. `standings` and `lost_alerts` are pure; the
watcher only remembers each observer's run of abstentions between cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.controller.model import Health, Snapshot

LOST_ALERT = "observer-lost"
UNREPORTED = "configured, but sent no report at all"


@dataclass(frozen=True)
class Standing:
    observer: str
    voting: bool  # it has a fresh view of the primary (up or failed)
    why: str  # why it abstains ("" while it votes)
    abstained_cycles: int  # consecutive cycles without a vote (0 while it votes)


def standings(
    snapshot: Snapshot, primary: str, configured: int, abstained_before: dict[str, int]
) -> list[Standing]:
    """Each observer's standing on the primary this cycle; configured observers that sent
    no report at all stand as one row."""
    rows = []
    for report in snapshot.reports:
        if report.health(primary) is not Health.UNKNOWN:
            rows.append(Standing(report.observer, True, "", 0))
            continue
        why = report.note or f"no fresh view of {primary}"
        rows.append(Standing(report.observer, False, why,
                             abstained_before.get(report.observer, 0) + 1))  # fmt: skip
    missing = configured - len(snapshot.reports)
    if missing > 0:
        name = f"{missing} unreported"
        rows.append(Standing(name, False, UNREPORTED, abstained_before.get(name, 0) + 1))
    return rows


def lost_alerts(rows: list[Standing], configured: int, lost_after: int) -> dict[str, str]:
    """One alert per lost observer ("observer lost: NAME: why"), saying too when those
    still voting are fewer than a majority of the configured observers."""
    lost = [s for s in rows if not s.voting and s.abstained_cycles >= lost_after]
    if not lost:
        return {}
    voting = [s.observer for s in rows if s.voting]
    majority = configured // 2 + 1
    shrunk = ""
    if len(voting) < majority:
        shrunk = (
            f"; only {len(voting)} of {configured} configured observers vote "
            f"({', '.join(voting) or 'none'}), fewer than their majority of {majority}: "
            "they decide alone"
        )
    return {
        f"{LOST_ALERT}:{s.observer}": f"observer lost: {s.observer}: {s.why}{shrunk}" for s in lost
    }


class ObserverWatch:
    """Remembers each observer's run of abstentions from one cycle to the next."""

    def __init__(self, lost_after: int) -> None:
        self.lost_after = lost_after
        self.last: list[Standing] = []

    def alerts(self, snapshot: Snapshot, primary: str, configured: int) -> dict[str, str]:
        before = {s.observer: s.abstained_cycles for s in self.last}
        self.last = standings(snapshot, primary, configured, before)
        return lost_alerts(self.last, configured, self.lost_after)
