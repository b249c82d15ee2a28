"""A cycle must fit its interval's probes and, in a cluster, the leader's lease."""

from __future__ import annotations

import pytest

from orchestrator.config.cycle import CycleLimits, cycle_problems
from orchestrator.config.loader import parse_config
from orchestrator.errors import ConfigError


@pytest.mark.parametrize(
    ("limits", "fields"),
    [
        # The defaults: probes 2 s, interval 5 s, lease 15 s, margin 3 s.
        (CycleLimits(2.0, 5.0, 15, 3.0), []),
        (CycleLimits(2.0, 5.0), []),
        # The lab's: probes 1 s, interval 1 s, lease 4 s, margin 0.8 s (2 + 0.8 = 2.8).
        (CycleLimits(1.0, 1.0, 4, 0.8), []),
        (CycleLimits(1.0, 1.0, 2, 0.4), ["cluster.lease_ttl"]),
        # A probe longer than the interval, with or without a cluster: the fixed clock
        # would cut it at every cycle's deadline.
        (CycleLimits(20.0, 5.0), ["probes.timeout"]),
        (CycleLimits(5.0, 5.0), []),
        # The hole: a 20 s probe with a 5 s interval and a 15 s lease is refused at load.
        (CycleLimits(20.0, 5.0, 15, 3.0), ["probes.timeout"]),
        (CycleLimits(5.0, 5.0, 15, 3.0), []),  # reads end at 4.5 s: the lease holds
        # Interval too long for the lease, the probes fitting.
        (CycleLimits(0.5, 5.0, 10, 2.0), ["cluster.lease_ttl"]),
        (CycleLimits(0.5, 4.0, 10, 2.0), []),
        # Both broken: both said.
        (CycleLimits(9.0, 8.0, 10, 2.0), ["probes.timeout", "cluster.lease_ttl"]),
        # Without [probes] read (a command that does not probe): the interval alone.
        (CycleLimits(None, 5.0, 15, 3.0), []),
        (CycleLimits(None, 8.0, 15, 3.0), ["cluster.lease_ttl"]),
    ],
)
def test_cycle_limits(limits: CycleLimits, fields: list[str]) -> None:
    assert [f for f, _ in cycle_problems(limits)] == fields


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
    assert "lower probes.timeout or raise policy.interval" in text
    fixed = CONFIG.replace("timeout = 20", "timeout = 2")
    config = parse_config(fixed, only=only, environ={"PW": "x"})
    assert config.cluster is not None and config.cluster.lease_ttl == 15


def test_the_default_lease_fits_the_default_cycle() -> None:
    text = CONFIG.replace("timeout = 20\n", "").replace("lease_ttl = 15\n", "")
    text = text.replace("interval = 5\n", "")
    config = parse_config(text, only=["probes", "policy", "cluster"], environ={"PW": "x"})
    assert config.cluster is not None and config.cluster.lease_ttl == 15
