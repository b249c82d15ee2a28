"""Who votes on a host's health, and whether the failed votes make a quorum. Pure.

Observers are the controller, each witness, and the standby's own view of the primary
(it sits on the replication path). An observer with no fresh view of a host abstains: its
silence is neither "up" nor "failed". The quorum is a majority of the observers that do
vote, so a lost observer can neither block a failover the others agree on nor cause one;
and for the primary (whose loss moves mail) never fewer than two votes once more than
one observer is configured: the controller alone cannot tell "dead" from "cut off from me".
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.controller.model import Health, Snapshot


@dataclass(frozen=True)
class HostVotes:
    host: str
    failed: tuple[str, ...]
    up: tuple[str, ...]
    abstained: tuple[str, ...]  # configured observers without a view of the host
    configured: int
    floor: int  # the fewest failed votes that can ever make a quorum

    @property
    def voting(self) -> int:
        return len(self.failed) + len(self.up)

    @property
    def needed(self) -> int:
        return max(self.voting // 2 + 1, self.floor)

    @property
    def failed_by_quorum(self) -> bool:
        return len(self.failed) >= self.needed

    def describe(self) -> str:
        text = f"{len(self.failed)} of {self.voting} voting observers"
        if self.abstained:
            text += f" ({', '.join(self.abstained)} abstain)"
        return text


def host_votes(snapshot: Snapshot, host: str, configured: int, primary: bool) -> HostVotes:
    failed = tuple(snapshot.votes(host, Health.FAILED))
    up = tuple(snapshot.votes(host, Health.UP))
    seen = {r.observer for r in snapshot.reports}
    abstained = tuple(sorted(seen - set(failed) - set(up)))
    missing = max(0, configured - len(seen))
    if missing:
        abstained += (f"{missing} unreported",)
    floor = min(2, configured) if primary else 1
    return HostVotes(host, failed, up, abstained, configured, floor)
