"""A planned move never makes an outage: the controller keeps watching while it waits, and
its target is checked again before every step that commits.

A planned move waits for minutes (one old TTL, the hold, drains, convergence). The world
does not wait with it: the old primary may die (a failover is then due, and takes
precedence), or the host the move goes to may die (moving mail to it, or fencing the
host that still serves, would make the outage). So:

- every wait of the run ticks the controller's watch cycle at its usual interval
  (`WatchingClock`): probes, the decision, alerts and metrics go on as if no move ran;
- the pure rule `wait_verdict` says, from each tick's decision, whether the move must
  stop, and why;
- `commit_blocker` is asked right before a step that commits (the DNS rewrite, the
  fence, the TTLs restored onto the new primary): the target must have passed every
  observer's last cycle and a fresh probe.

How a stopped move is undone is `switching.execute`'s business: before DNS moved, the TTLs
go back and the pair stays as it was; after DNS moved, the pair is handed to the loop as
DNS has it, so a dead target is failed over back to the healthy host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from orchestrator.clock import Clock
from orchestrator.controller.decision import Action, Decision
from orchestrator.controller.model import ControllerState
from orchestrator.controller.runner import StepFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stop:
    """Why a planned move must stop now."""

    reason: str
    for_failover: bool  # a failover is due: it takes over, the move's TTLs are its business


def wait_verdict(decision: Decision, target: str, dns_moved: bool, threshold: int) -> Stop | None:
    """Whether a planned move to `target` must stop, given the decision of a cycle taken
    while it waits (the state's primary is still the old one: roles change at the end)."""
    failed = decision.state.failures(target)
    if failed >= threshold:
        where = "DNS already names it" if dns_moved else "before DNS moved"
        return Stop(f"{target} failed for {failed} cycles ({where}): {decision.reason}", False)
    if not dns_moved and decision.action is Action.FAILOVER and decision.promote == target:
        # The old primary died: the failover goes where the move was going, at once,
        # instead of after the rest of the wait.
        return Stop(f"a failover takes precedence: {decision.reason}", True)
    return None


def commit_blocker(target: str, failed_cycles: int, probe_problems: list[str]) -> str | None:
    """Why a planned move may not commit to `target` now (None: it may). Any failure in
    the last cycle counts, not only a streak: committing is what cannot be taken back."""
    if failed_cycles > 0:
        return f"{target} failed the last {failed_cycles} cycle(s) of the controller's watch"
    if probe_problems:
        return f"{target} no longer serves: {'; '.join(probe_problems)}"
    return None


class WaitWatcher(Protocol):
    """The controller's side of a planned run: a watch cycle while the run waits."""

    def tick(self) -> None:
        """Run one watch cycle if one is due (at most one per interval)."""

    def stop(self) -> Stop | None:
        """Set once a tick found that the move must stop."""

    def failures(self, host: str) -> int:
        """Consecutive cycles in which a quorum saw `host` failed, as of the last tick."""

    def state(self) -> ControllerState:
        """The run's starting state with the failure counts of the last tick."""


class Preempted(StepFailed):
    """The run's wait found that the move must stop (see `wait_verdict`)."""


class WatchingClock:
    """A clock whose sleeps tick the watcher, every `every` seconds at most: provider
    retries, DNS verification and the run's own pauses all keep the controller watching."""

    def __init__(self, clock: Clock, watcher: WaitWatcher, every: float) -> None:
        self.clock, self.watcher, self.every = clock, watcher, max(0.05, every)

    def now(self) -> datetime:
        return self.clock.now()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        end = self.clock.monotonic() + seconds
        while (left := end - self.clock.monotonic()) > 0:
            self.clock.sleep(min(self.every, left))
            self.watcher.tick()

    async def asleep(self, seconds: float) -> None:
        await self.clock.asleep(seconds)  # probes' own timeouts: never a watch cycle inside


class RunWatch:
    """The watch loop's `WaitWatcher`: `cycle` is the controller's watch cycle (observe,
    decide, journal, alerts, metrics; no action), run on the loop's fixed grid."""

    def __init__(
        self,
        cycle: Callable[[ControllerState], Decision],
        state: ControllerState,
        target: str,
        dns_moved: Callable[[], bool],
        clock: Clock,
        interval: float,
        threshold: int,
    ) -> None:
        # The target is counted from the run's start: a switchback's target failed every
        # cycle while it was fenced, and the run's first step unfences it.
        counts = {**state.failed_cycles, target: 0}
        self.cycle, self._state, self.target = cycle, replace(state, failed_cycles=counts), target
        self.dns_moved, self.clock = dns_moved, clock
        self.interval, self.threshold = interval, threshold
        self.next_at = clock.monotonic() + interval
        self.ticks = 0
        self._stop: Stop | None = None

    def tick(self) -> None:
        now = self.clock.monotonic()
        if self._stop is not None or now < self.next_at:
            return
        # On the grid; a run that blocked past slots (a long provider call) skips them
        # rather than catching up with cycles back to back.
        self.next_at += self.interval
        if self.next_at <= now:
            self.next_at = now + self.interval
        try:
            decision = self.cycle(self._state)
        except Exception:  # a watch cycle must never break the run it watches
            log.exception("watch cycle during a planned move failed")
            return
        self.ticks += 1
        self._state = replace(self._state, failed_cycles=decision.state.failed_cycles)
        self._stop = wait_verdict(decision, self.target, self.dns_moved(), self.threshold)
        if self._stop is not None:
            log.warning("ALERT: planned move to %s stops: %s", self.target, self._stop.reason)

    def stop(self) -> Stop | None:
        return self._stop

    def failures(self, host: str) -> int:
        return self._state.failures(host) if self.ticks else 0

    def state(self) -> ControllerState:
        return self._state
