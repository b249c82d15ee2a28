"""Retry policy for provider calls: tenacity with the injected clock, bounded by a deadline.

Only DnsUnavailable (timeouts, 429, 5xx, lost replies) is retried. A server's Retry-After
is honoured as given; when honouring it would cross the deadline we stop instead of
sleeping past it or retrying early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.errors import DnsUnavailable

T = TypeVar("T")


class _WaitRetryAfter(wait_base):
    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, DnsUnavailable) and exc.retry_after is not None:
            return max(0.0, exc.retry_after)
        backoff = self.initial * 2 ** (retry_state.attempt_number - 1)
        return float(min(self.maximum, backoff))


class _StopAtDeadline(stop_base):
    def __init__(self, clock: Clock, deadline: float, attempts: int) -> None:
        self.clock = clock
        self.deadline = deadline
        self.attempts = attempts

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.attempts:
            return True
        return self.clock.monotonic() + retry_state.upcoming_sleep > self.deadline


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries, exponential backoff capped at `maximum`, never past deadline."""

    attempts: int = 8
    initial: float = 0.5
    maximum: float = 8.0
    default_budget: float = 60.0
    clock: Clock = field(default=SYSTEM_CLOCK)

    def deadline_in(self, seconds: float | None = None) -> float:
        return self.clock.monotonic() + (self.default_budget if seconds is None else seconds)

    def run(self, fn: Callable[[], T], deadline: float | None = None) -> T:
        """Call `fn` until it returns, retrying DnsUnavailable; re-raise the last error."""
        retrying = tenacity.Retrying(
            sleep=self.clock.sleep,
            stop=_StopAtDeadline(
                self.clock, self.deadline_in() if deadline is None else deadline, self.attempts
            ),
            wait=_WaitRetryAfter(self.initial, self.maximum),
            retry=tenacity.retry_if_exception_type(DnsUnavailable),
            reraise=True,
        )
        return retrying(fn)
