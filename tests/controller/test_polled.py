"""Slow reads polled in the background: which answer a cycle may use (a table), and a
hung read never holds a cycle past its deadline nor piles up (injected clock)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Iterator

import pytest

from orchestrator.controller.polled import Answer, Polled, usable
from tests.fakes import FakeClock

PAIR = ("mx2", "mx1")
USABLE = [
    # (id, answer, key, asked since, words of the reason; None: usable)
    ("no answer yet", None, PAIR, 0.0, "no answer yet"),
    ("young enough", Answer("up", 9.0, PAIR), PAIR, 5.0, None),
    ("asked exactly at the limit", Answer("up", 5.0, PAIR), PAIR, 5.0, None),
    ("too old: abstains, as a missing one", Answer("up", 4.9, PAIR), PAIR, 5.0, "too old"),
    ("about the pair before a failover", Answer("up", 9.0, PAIR), ("mx1", "mx2"), 5.0,
     "other hosts"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "key", "since", "why"), [c[1:] for c in USABLE], ids=[c[0] for c in USABLE]
)
def test_usable(answer: Answer[str] | None, key: object, since: float, why: str | None) -> None:
    got = usable(answer, key, since, 10.0)
    assert got is None if why is None else (got is not None and why in got)


@pytest.fixture
def pool() -> Iterator[cf.ThreadPoolExecutor]:
    executor = cf.ThreadPoolExecutor(max_workers=4)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def test_a_hung_read_is_not_waited_for_past_the_deadline_nor_asked_twice(
    pool: cf.ThreadPoolExecutor,
) -> None:
    clock = FakeClock()
    release, calls = threading.Event(), []

    def hung_standby() -> str:
        calls.append(clock.monotonic())
        release.wait(30)
        return "failed"

    polled: Polled[str] = Polled(pool, "standby")
    # Cycle 1: asked, not answered by its deadline (the deadline is now: no wait at all).
    polled.ask(PAIR, clock.monotonic(), hung_standby)
    value, why = polled.answer(PAIR, -10.0, clock.monotonic(), clock.monotonic)
    assert value is None and why is not None and "has not answered" in why
    # Cycle 2, one interval later: the read is still under way, so it is not asked again.
    clock.advance(1.0)
    polled.ask(PAIR, clock.monotonic(), hung_standby)
    value, why = polled.answer(PAIR, -9.0, clock.monotonic(), clock.monotonic)
    assert value is None and why is not None and "asked 1.0 s ago" in why
    assert len(calls) == 1
    # It answers between cycles; cycle 3 asks anew (that read hangs too) and uses the
    # late answer at once, dated when it was asked, without waiting at all.
    release.set()
    flight = polled._flight
    assert flight is not None
    cf.wait([flight[0]], timeout=10)
    clock.advance(1.0)
    release_2 = threading.Event()
    polled.ask(PAIR, clock.monotonic(), lambda: "up" if release_2.wait(30) else "?")
    value, why = polled.answer(PAIR, clock.monotonic() - 5.0, -10.0, clock.monotonic)
    assert (value, why) == ("failed", None)
    # Ten seconds on, the new read still hangs: the old answer is too old, it abstains.
    clock.advance(10.0)
    value, why = polled.answer(PAIR, clock.monotonic() - 5.0, -10.0, clock.monotonic)
    assert value is None and why is not None
    assert "too old" in why and "the one asked 10.0 s ago has not answered" in why
    release_2.set()


def test_a_read_that_raises_keeps_the_previous_answer(pool: cf.ThreadPoolExecutor) -> None:
    clock = FakeClock()
    polled: Polled[str] = Polled(pool, "witness w1")
    polled.ask("w1", 0.0, lambda: "up")
    assert polled.answer("w1", 0.0, 5.0, clock.monotonic) == ("up", None)

    def broken() -> str:
        raise OSError("connection reset")

    clock.advance(1.0)
    polled.ask("w1", 1.0, broken)
    assert polled.answer("w1", 0.0, 5.0, clock.monotonic) == ("up", None)
    value, why = polled.answer("w1", 1.0, 5.0, clock.monotonic)
    assert value is None and why is not None and "too old" in why
