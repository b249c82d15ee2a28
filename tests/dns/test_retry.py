"""The retry policy: tenacity with the injected clock, Retry-After honoured, deadline kept."""

from __future__ import annotations

import pytest

from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import DnsAuthError, DnsUnavailable
from tests.fakes import FakeClock


def flaky(failures: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return calls, fn


def test_backoff_is_exponential_and_capped_without_real_sleep() -> None:
    clock = FakeClock()
    calls, fn = flaky([DnsUnavailable("x")] * 5)
    policy = RetryPolicy(attempts=10, initial=1, maximum=4, clock=clock)
    assert policy.run(fn) == "done"  # type: ignore[arg-type]
    assert clock.slept == [1, 2, 4, 4, 4]
    assert len(calls) == 6


def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    _, fn = flaky([DnsUnavailable("429", retry_after=13.0)])
    RetryPolicy(clock=clock).run(fn)  # type: ignore[arg-type]
    assert clock.slept == [13.0]


def test_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    _, fn = flaky([DnsUnavailable("429", retry_after=30.0)] * 10)
    with pytest.raises(DnsUnavailable, match="429"):
        RetryPolicy(clock=clock).run(fn, deadline=70.0)  # type: ignore[arg-type]
    assert clock.slept == [30.0, 30.0]  # a third wait would end at 90 s > 70 s


def test_other_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls, fn = flaky([DnsAuthError("bad key")])
    with pytest.raises(DnsAuthError):
        RetryPolicy(clock=clock).run(fn)  # type: ignore[arg-type]
    assert len(calls) == 1 and clock.slept == []


def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    calls, fn = flaky([DnsUnavailable("x")] * 10)
    with pytest.raises(DnsUnavailable):
        RetryPolicy(attempts=3, clock=clock).run(fn)  # type: ignore[arg-type]
    assert len(calls) == 3
