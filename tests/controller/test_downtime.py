"""The worst-case client downtime stated from the configuration (a pure function, a table)."""

from __future__ import annotations

import pytest

from orchestrator.config import parse_config
from orchestrator.controller.downtime import DowntimeBound, downtime_bound, downtime_problem

DNS = """
[dns]
provider = "rfc2136"
zones = ["example.test"]
{client_ttl}
[dns.rfc2136]
server = "127.0.0.1"
key_name = "k"
key_secret = "env:TSIG"
[[dns.records]]
name = "example.test"
type = "MX"
[[dns.records]]
name = "mail.example.test"
type = "A"
{a_ttl}
[dns.mail_hosts]
"mx1.example.test" = ["10.0.0.1"]
[policy]
interval = {interval}
failure_threshold = {threshold}
max_client_downtime = {limit}
"""


@pytest.mark.parametrize(
    ("client_ttl", "a_ttl", "interval", "threshold", "limit", "bound", "ok"),
    [
        ("", "", 5, 3, 300, 15 + 2 + 60, True),  # defaults: client_ttl 60
        ("client_ttl = 300", "", 5, 3, 300, 15 + 2 + 300, False),
        ("", "ttl = 3600", 1, 3, 300, 3 + 2 + 3600, False),  # an explicit record TTL wins
        ("client_ttl = 30", "", 1, 3, 40, 3 + 2 + 30, True),
        ("", "", 30, 5, 120, 150 + 2 + 60, False),  # slow detection alone breaks the limit
    ],
)
def test_client_downtime_bound_and_its_limit(
    client_ttl: str,
    a_ttl: str,
    interval: float,
    threshold: int,
    limit: float,
    bound: float,
    ok: bool,
) -> None:
    text = DNS.format(
        client_ttl=client_ttl,
        a_ttl=a_ttl,
        interval=interval,
        threshold=threshold,
        limit=limit,
    )
    config = parse_config(text, environ={"TSIG": "c2VjcmV0"})
    got = downtime_bound(config.policy, config.dns)
    assert got.client_s == bound
    problem = downtime_problem(got, config.policy.max_client_downtime)
    assert (problem is None) == ok
    if problem:
        assert "policy.max_client_downtime" in problem and "dns.client_ttl" in problem


def test_the_bound_explains_itself() -> None:
    text = DowntimeBound(3.0, 2.0, 60).describe()
    assert (
        text == "worst-case client downtime 65 s = 3 s detection + 2 s DNS + 60 s client-name TTL"
    )
