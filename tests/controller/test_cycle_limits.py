"""A cycle must fit its interval's probes and, in a cluster, the leader's lease."""

from __future__ import annotations

import pytest

from orchestrator.config.cycle import CycleLimits, cycle_problems, worst_world_read
from orchestrator.config.loader import parse_config
from orchestrator.errors import ConfigError


@pytest.mark.parametrize(
    ("limits", "fields"),
    [
        # The defaults: probes 2 s, interval 5 s, lease 15 s, margin 3 s.
        (CycleLimits(2.0, 5.0, 15, 3.0), []),
        (CycleLimits(2.0, 5.0), []),
        # The lab's: probes 1 s, interval 1 s, lease 7 s, margin 1.4 s (5.5 + 1.4 = 6.9).
        (CycleLimits(1.0, 1.0, 7, 1.4), []),
        (CycleLimits(1.0, 1.0, 6, 1.2), ["cluster.lease_ttl"]),
        # A probe longer than the interval, with or without a cluster.
        (CycleLimits(20.0, 5.0), ["probes.timeout"]),
        (CycleLimits(5.0, 5.0), []),
        # The hole: interval 5 fits 15 s, but a probe round may take 81.5 s.
        (CycleLimits(20.0, 5.0, 15, 3.0), ["probes.timeout", "cluster.lease_ttl"]),
        (CycleLimits(5.0, 5.0, 15, 3.0), ["cluster.lease_ttl"]),  # 21.5 + 3 > 15
        (CycleLimits(5.0, 5.0, 25, 3.0), []),
        # Interval too long for the lease (the earlier rule) and the probes fitting.
        (CycleLimits(0.5, 5.0, 10, 2.0), ["cluster.lease_ttl"]),
        (CycleLimits(0.5, 4.0, 10, 2.0), []),
        # Both lease rules broken: both said.
        (CycleLimits(2.0, 8.0, 10, 2.0), ["cluster.lease_ttl", "cluster.lease_ttl"]),
        # Without [probes] read (a command that does not probe): the interval alone.
        (CycleLimits(None, 5.0, 15, 3.0), []),
        (CycleLimits(None, 8.0, 15, 3.0), ["cluster.lease_ttl"]),
    ],
)
def test_cycle_limits(limits: CycleLimits, fields: list[str]) -> None:
    assert [f for f, _ in cycle_problems(limits)] == fields


def test_the_worst_read_is_the_readers_budget_grace_and_two_probe_timeouts() -> None:
    assert worst_world_read(2.0) == 9.5
    assert worst_world_read(20.0) == 81.5
    assert worst_world_read(0.1) == 3.2  # the budget's 2 s floor


CONFIG = """
[probes]
client_name = "mail.example.test"
probe_user = "probe@example.test"
probe_password = "env:PW"
timeout = 20
[policy]
interval = 5
[cluster]
name = "m"
member = "a"
members = ["a"]
endpoints = ["http://127.0.0.1:2379"]
allow_insecure_http = true
lease_ttl = 15
"""


def test_a_cycle_longer_than_the_lease_is_refused_naming_fields_and_fix() -> None:
    only = ["probes", "policy", "cluster"]
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG, only=only, environ={"PW": "x"})
    text = str(caught.value)
    assert "probes.timeout: 20 s is longer than policy.interval = 5 s" in text
    assert "cluster.lease_ttl: 15 s is shorter than the longest cycle" in text
    assert "(81.5 s + 3 s = 84.5 s)" in text
    assert "raise cluster.lease_ttl to at least 85 or lower probes.timeout" in text
    fixed = CONFIG.replace("timeout = 20", "timeout = 2")
    config = parse_config(fixed, only=only, environ={"PW": "x"})
    assert config.cluster is not None and config.cluster.lease_ttl == 15


def test_the_default_lease_fits_the_default_cycle() -> None:
    text = CONFIG.replace("timeout = 20\n", "").replace("lease_ttl = 15\n", "")
    text = text.replace("interval = 5\n", "")
    config = parse_config(text, only=["probes", "policy", "cluster"], environ={"PW": "x"})
    assert config.cluster is not None and config.cluster.lease_ttl == 15
