"""Slow reads polled in the background, so that no observer stretches a cycle.

A cycle runs on a fixed clock (start + k x interval). The reads that can hang (the
standby's view over SSH, a witness over HTTPS, a host's fence state, DNS) each run in a
worker at their own pace, at most one at a time per read: a cycle asks for a fresh
answer when none is in flight, waits for it no later than the cycle's deadline, and
otherwise uses the latest answer while it is young enough. An answer is as old as the
moment it was asked (what it says was true then, not when it came back); too old, or
about another pair of hosts, it is no answer: the observer abstains, as a missing one
always did. This is Patroni's heartbeat loop: the loop's pace is its own, never a
read's.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    asked_at: float  # monotonic seconds when the read began
    key: Hashable  # what it was asked about (the pair of hosts, the host...)


def usable(answer: Answer[T] | None, key: Hashable, asked_since: float, now: float) -> str | None:
    """Why `answer` cannot be used now (None: it can): it must be about `key` and have
    been asked at `asked_since` or later. Pure."""
    if answer is None:
        return "no answer yet"
    if answer.key != key:
        return "its last answer was about other hosts"
    if answer.asked_at < asked_since:
        return f"its last answer was asked {now - answer.asked_at:.1f} s ago, too old to count"
    return None


class Polled(Generic[T]):
    """One slow read: at most one call in flight, its latest answer kept."""

    def __init__(self, pool: cf.ThreadPoolExecutor, what: str) -> None:
        self.pool, self.what = pool, what
        self.latest: Answer[T] | None = None
        self._flight: tuple[cf.Future[T], float, Hashable] | None = None

    def ask(self, key: Hashable, now: float, read: Callable[[], T]) -> None:
        """Start `read` unless one is still under way (a hung host costs one worker)."""
        self._collect()
        if self._flight is None:
            self._flight = (self.pool.submit(read), now, key)

    def in_flight_since(self) -> float | None:
        return self._flight[1] if self._flight is not None else None

    def answer(
        self, key: Hashable, asked_since: float, deadline: float, monotonic: Callable[[], float]
    ) -> tuple[T | None, str | None]:
        """The latest usable answer, waiting for the call in flight until `deadline` at
        the latest, never longer; (None, why) when there is none."""
        if self._flight is not None:
            cf.wait([self._flight[0]], timeout=max(0.0, deadline - monotonic()))
            self._collect()
        now = monotonic()
        why = usable(self.latest, key, asked_since, now)
        if why is None and self.latest is not None:
            return self.latest.value, None
        if self._flight is not None:
            why = f"{why}; the one asked {now - self._flight[1]:.1f} s ago has not answered"
        return None, why

    def _collect(self) -> None:
        if self._flight is None or not self._flight[0].done():
            return
        future, asked_at, key = self._flight
        self._flight = None
        failed = future.exception() if not future.cancelled() else None
        if future.cancelled() or failed is not None:
            # A read must never take the cycle down; the previous answer stays the latest.
            log.warning("%s failed: %r", self.what, failed)
            return
        self.latest = Answer(future.result(), asked_at, key)
