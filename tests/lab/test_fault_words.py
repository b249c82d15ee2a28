"""The values the lab's fault words take, and the usage errors for bad ones (no lab needed)."""

from __future__ import annotations

import argparse

import pytest
from mxlab import cli, control, dnslag, fakeclock, lossy

from orchestrator.errors import UsageError


@pytest.mark.parametrize(
    ("word", "seconds"),
    [("8", 8.0), ("8s", 8.0), ("0", 0.0), ("2.5", 2.5), ("3600", 3600.0)],
)
def test_lag_seconds(word: str, seconds: float) -> None:
    assert dnslag.parse_seconds(word) == seconds


@pytest.mark.parametrize(("word", "percent"), [("5%", 5), ("5", 5), ("0%", 0), ("100%", 100)])
def test_loss_percent(word: str, percent: int) -> None:
    assert lossy.parse_percent(word) == percent


@pytest.mark.parametrize(
    ("word", "seconds"),
    [("+90s", 90), ("90", 90), ("-2m", -120), ("1h", 3600), ("+1d", 86400), ("0", 0)],
)
def test_clock_step(word: str, seconds: int) -> None:
    assert fakeclock.parse_step(word) == seconds


@pytest.mark.parametrize(
    ("parse", "word", "names"),
    [
        (dnslag.parse_seconds, "soon", "seconds"),
        (dnslag.parse_seconds, "-1", "between 0 and 3600"),
        (dnslag.parse_seconds, "3601", "between 0 and 3600"),
        (lossy.parse_percent, "lots", "percentage"),
        (lossy.parse_percent, "101%", "between 0% and 100%"),
        (lossy.parse_percent, "5.5%", "percentage"),
        (fakeclock.parse_step, "+90x", "+90s"),
        (fakeclock.parse_step, "later", "+90s"),
    ],
)
def test_bad_values_name_the_fix(parse: object, word: str, names: str) -> None:
    with pytest.raises(UsageError, match=names.replace("+", r"\+")):
        parse(word)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("words", "names"),
    [
        (["loss", "mx1", "mx2"], "loss HOST_A HOST_B PERCENT%"),
        (["partition", "mx1"], "partition HOST_A HOST_B"),
        (["heal-loss", "mx1"], "heal-loss HOST_A HOST_B"),
        (["ns2", "lag", "8", "9"], "ns2 lag SECONDS"),
        (["mx1"], "clock"),
    ],
)
def test_misshapen_fault_commands_get_the_usage(words: list[str], names: str) -> None:
    with pytest.raises(UsageError, match=names):
        cli.cmd_fault(argparse.Namespace(words=words))


@pytest.mark.parametrize(
    ("host", "action", "peer", "value", "names"),
    [
        ("mx1", "lag", None, "8", "secondary nameserver"),
        ("ns2", "lag", None, None, "needs a value"),
        ("mx1", "clock", None, None, "needs a value"),
        ("ns1", "disk-full", None, None, "mail hosts"),
        ("mx1", "loss", "mx1", "5%", "two different hosts"),
        ("mx1", "loss", None, "5%", "needs two hosts"),
        ("mx1", "bogus", None, None, "choose one of .*kill.*cannot-act.*disk-full.*loss"),
    ],
)
def test_faults_refuse_what_they_cannot_do(
    host: str, action: str, peer: str | None, value: str | None, names: str
) -> None:
    with pytest.raises(UsageError, match=names):
        control.fault(host, action, peer, value)
