"""Route 53 provider (boto3). Two kinds of test, each saying which it is:

- MOTO: real boto3 over HTTP to moto's server on loopback (lab/mxlab/standins/route53_moto.py):
  the request shapes, one ChangeBatch per zone, requests counted, botocore's retries off.
- STUBBER: botocore's Stubber answers in place of Route 53, for what moto does not
  emulate: a ChangeBatch refused because the RRset changed between our read and our
  write (InvalidChangeBatch), throttling, 5xx after the change landed, PENDING before
  INSYNC, refused credentials. Stubber checks every request's parameters as it goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from orchestrator.config import parse_config
from orchestrator.dns import wire
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, RRset
from orchestrator.dns.retry import RetryPolicy
from orchestrator.dns.route53 import Route53Provider
from orchestrator.errors import (
    ConfigError,
    DnsAuthError,
    DnsError,
    DnsUnavailable,
    StaleExpectation,
)
from tests.fakes import FakeClock

from .conftest import ENVIRON, BindPair, ProviderEnv, dns_toml

MX1 = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
MX2 = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
OTHER = RRset("example.test.", "MX", 300, ("20 mx9.example.test.",))
KEYS = 'access_key_id = "env:MXCTL_TEST_AWS_KEY"\nsecret_access_key = "env:MXCTL_TEST_AWS_SECRET"\n'


# -- MOTO --------------------------------------------------------------------------------
def test_moto_one_cas_is_read_then_delete_exact_plus_create_in_one_batch(
    route53_setup: ProviderEnv,
) -> None:
    provider = route53_setup.provider()
    assert isinstance(provider, Route53Provider)
    calls: list[tuple[str, dict[str, Any]]] = []
    provider.client.meta.events.register(
        "before-parameter-build.route53",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )
    result = provider.apply_change(Change(MX1, MX2))
    provider.wait_applied(result.change)
    assert [name for name, _ in calls] == [
        "ListHostedZonesByName",
        "ListResourceRecordSets",
        "ChangeResourceRecordSets",
        "GetChange",
    ]
    change = calls[2][1]["ChangeBatch"]["Changes"]
    assert change == [
        {
            "Action": "DELETE",
            "ResourceRecordSet": {
                "Name": "example.test.",
                "Type": "MX",
                "TTL": 300,
                "ResourceRecords": [{"Value": "10 mx1.example.test."}],
            },
        },
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": "example.test.",
                "Type": "MX",
                "TTL": 300,
                "ResourceRecords": [{"Value": "10 mx2.example.test."}],
            },
        },
    ]
    assert provider.requests == 4  # every HTTP request, counted at before-send


def test_moto_a_plan_is_one_change_batch_per_zone(route53_setup: ProviderEnv) -> None:
    provider = route53_setup.provider()
    assert isinstance(provider, Route53Provider)
    calls: list[str] = []
    provider.client.meta.events.register(
        "before-parameter-build.route53", lambda model, **_: calls.append(model.name)
    )
    plan = build_plan(route53_setup.config, provider, "mx2.example.test")
    results = apply_plan(plan, route53_setup.config, provider)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    assert calls.count("ChangeResourceRecordSets") == 2  # example.test and example.org
    # One GetChange per distinct change id, none once INSYNC; moto gives every change the
    # same fixed id, so one here (test_stubber_waits_for_insync covers PENDING).
    assert calls.count("GetChange") == 1
    assert provider.read("mail.example.test.", "AAAA").rdatas == ("2001:db8::22",)


def test_moto_botocore_retries_are_off_so_attempts_are_not_multiplied(
    route53_setup: ProviderEnv,
) -> None:
    provider = route53_setup.provider()
    assert isinstance(provider, Route53Provider)
    assert provider.client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    # Nothing listens on port 9: each tenacity attempt is exactly one HTTP request. With
    # botocore's default retries this would be 3 (standard) or 5 (legacy) per attempt.
    text = route53_setup.config_text.replace(
        route53_setup.config_text.split('endpoint_url = "')[1].split('"')[0], "http://127.0.0.1:9"
    )
    config = parse_config(text, environ=ENVIRON).dns
    clock = FakeClock()
    dead = make_provider(config, clock, RetryPolicy(attempts=3, clock=clock))
    route53_setup.providers.append(dead)
    with pytest.raises(DnsUnavailable, match="did not answer"):
        dead.read("example.test.", "MX")
    assert dead.requests == 3
    assert len(clock.slept) == 2


# -- STUBBER -----------------------------------------------------------------------------
@pytest.fixture
def stubbed() -> Iterator[tuple[Route53Provider, Stubber, FakeClock]]:
    block = KEYS + 'zone_ids = { "example.test" = "Z1", "example.org" = "Z2" }\n'
    config = parse_config(dns_toml("route53", block, []), environ=ENVIRON).dns
    clock = FakeClock()
    provider = make_provider(config, clock, RetryPolicy(attempts=4, clock=clock))
    assert isinstance(provider, Route53Provider)
    with Stubber(provider.client) as stubber:
        yield provider, stubber, clock
        stubber.assert_no_pending_responses()
    provider.close()


def _listed(stubber: Stubber, rrset: RRset) -> None:
    records = []
    if rrset.exists:
        records.append(
            {
                "Name": rrset.name,
                "Type": rrset.rtype,
                "TTL": rrset.ttl,
                "ResourceRecords": [{"Value": v} for v in rrset.rdatas],
            }
        )
    stubber.add_response(
        "list_resource_record_sets",
        {"ResourceRecordSets": records, "IsTruncated": False, "MaxItems": "1"},
        {
            "HostedZoneId": "Z1",
            "StartRecordName": rrset.name,
            "StartRecordType": rrset.rtype,
            "MaxItems": "1",
        },
    )


def _changed(stubber: Stubber, change_id: str = "/change/C1", status: str = "PENDING") -> None:
    info = {"Id": change_id, "Status": status, "SubmittedAt": "2026-11-30T00:00:00Z"}
    stubber.add_response("change_resource_record_sets", {"ChangeInfo": info})


def test_stubber_rrset_changed_between_read_and_write_is_stale_and_nothing_changes(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, _ = stubbed
    _listed(stubber, MX1)  # our read: as expected
    stubber.add_client_error(
        "change_resource_record_sets",
        "InvalidChangeBatch",
        "[Tried to delete resource record set [name='example.test.', type='MX'] but the "
        "values provided do not match the current values]",
        400,
    )
    _listed(stubber, OTHER)  # the base re-reads to report what is there
    with pytest.raises(StaleExpectation) as caught:
        provider.apply_change(Change(MX1, MX2))
    assert caught.value.current == OTHER
    assert "20 mx9.example.test." in str(caught.value)


def test_stubber_create_refused_as_existing_is_stale(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, _ = stubbed
    absent = RRset("example.test.", "MX")
    _listed(stubber, absent)
    stubber.add_client_error(
        "change_resource_record_sets",
        "InvalidChangeBatch",
        "[Tried to create resource record set [name='example.test.', type='MX'] but it "
        "already exists]",
        400,
    )
    _listed(stubber, OTHER)
    with pytest.raises(StaleExpectation):
        provider.apply_change(Change(absent, MX2))


def test_stubber_5xx_after_the_change_landed_is_retried_and_not_applied_twice(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, clock = stubbed
    _listed(stubber, MX1)
    stubber.add_client_error("change_resource_record_sets", "ServiceUnavailable", "try again", 503)
    _listed(stubber, MX2)  # it had landed: the retry reads, finds it done, writes nothing
    result = provider.apply_change(Change(MX1, MX2))
    assert result.outcome is Outcome.ALREADY
    assert len(clock.slept) == 1


def test_stubber_delete_repeats_the_record_set_as_read_ttl_included(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    """A TTL lowered since the plan (a planned move's choreography): the data is still the
    expected one, so the swap goes ahead, and its DELETE names TTL 60, as Route 53 holds
    it. AWS refuses a DELETE of TTL 300 here (moto does not); Stubber checks the batch."""
    provider, stubber, _ = stubbed
    lowered = RRset("example.test.", "MX", 60, MX1.rdatas)
    _listed(stubber, lowered)
    served = {
        "Name": "example.test.",
        "Type": "MX",
        "TTL": 60,
        "ResourceRecords": [{"Value": "10 mx1.example.test."}],
    }
    wanted = {"Name": "example.test.", "Type": "MX", "TTL": 300,
              "ResourceRecords": [{"Value": "10 mx2.example.test."}]}  # fmt: skip
    info = {"Id": "/change/C2", "Status": "PENDING", "SubmittedAt": "2026-11-30T00:00:00Z"}
    stubber.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": info},
        {
            "HostedZoneId": "Z1",
            "ChangeBatch": {
                "Comment": "mxctl: example.test. MX",
                "Changes": [
                    {"Action": "DELETE", "ResourceRecordSet": served},
                    {"Action": "CREATE", "ResourceRecordSet": wanted},
                ],
            },
        },
    )
    assert provider.apply_change(Change(MX1, MX2)).outcome is Outcome.APPLIED


def test_stubber_other_data_is_still_refused_before_any_write(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, _ = stubbed
    _listed(stubber, OTHER)  # our read: not the expected data; no ChangeBatch is sent
    _listed(stubber, OTHER)  # the base re-reads to report it
    with pytest.raises(StaleExpectation, match=r"20 mx9\.example\.test\."):
        provider.apply_change(Change(MX1, MX2))


def test_stubber_a_write_whose_reply_was_lost_still_waits_for_the_servers(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    """The first ChangeResourceRecordSets reached AWS, which applied it, but the reply was
    lost (connection reset). The retry reads MX2 already there: no change id to wait on,
    so the wait asks the zone's servers until they serve it, instead of returning at once
    because the API (which shows a change before its servers do) already lists it."""
    provider, stubber, clock = stubbed
    lost: list[str] = []

    def reply_lost(**_: Any) -> None:
        if not lost:
            lost.append("ChangeResourceRecordSets")
            raise EndpointConnectionError(endpoint_url="https://route53.amazonaws.com")

    provider.client.meta.events.register("after-call.route53.ChangeResourceRecordSets", reply_lost)
    asked: list[tuple[str, RRset]] = []

    def servers(zone: str, desired: RRset) -> bool:
        asked.append((zone, desired))
        return len(asked) > 1  # the first round: one server still serves mx1

    provider.served_everywhere = servers
    _listed(stubber, MX1)
    _changed(stubber)  # AWS answered (and applied); the reply is lost on its way back
    _listed(stubber, MX2)  # the retry: AWS had applied it
    result = provider.apply_change(Change(MX1, MX2))
    assert result.outcome is Outcome.ALREADY and lost
    provider.wait_applied(result.change, interval=2.0)
    assert asked == [("example.test.", MX2), ("example.test.", MX2)]
    assert clock.slept == [0.5, 2.0]  # the retry's backoff, then one wait for the servers


def test_stubber_servers_asked_directly_are_the_zones_ns_set(
    stubbed: tuple[Route53Provider, Stubber, FakeClock], bind: BindPair
) -> None:
    """The zone's NS set and glue come from Route 53 (stubbed); the server asked is a real
    BIND on loopback standing in for Route 53's: it must serve the RRset, with AA."""
    provider, stubber, _ = stubbed
    provider.server_port = bind.port
    answer = wire.query(bind.address, bind.port, "example.test.", "MX", 3.0)
    served = wire.answer_rrset(answer, "example.test.", "MX")
    assert served.exists
    for wanted, expected in ((served, True), (OTHER, False)):
        _listed(stubber, RRset("example.test.", "NS", 300, ("ns1.example.test.",)))
        _listed(stubber, RRset("ns1.example.test.", "A", 300, (bind.address,)))
        _listed(stubber, RRset("ns1.example.test.", "AAAA"))
        assert provider.served_everywhere("example.test.", wanted) is expected


def test_stubber_throttling_is_retried_by_tenacity_once_per_attempt(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, clock = stubbed
    stubber.add_client_error("list_resource_record_sets", "Throttling", "Rate exceeded", 400)
    stubber.add_client_error("list_resource_record_sets", "PriorRequestNotComplete", "busy", 400)
    _listed(stubber, MX1)
    _changed(stubber)
    assert provider.apply_change(Change(MX1, MX2)).outcome is Outcome.APPLIED
    assert clock.slept == [0.5, 1.0]  # our backoff, one sleep per refused request


def test_stubber_waits_for_insync(stubbed: tuple[Route53Provider, Stubber, FakeClock]) -> None:
    provider, stubber, clock = stubbed
    _listed(stubber, MX1)
    _changed(stubber, "/change/C9")
    pending = {"Id": "/change/C9", "Status": "PENDING", "SubmittedAt": "2026-11-30T00:00:00Z"}
    stubber.add_response("get_change", {"ChangeInfo": pending}, {"Id": "/change/C9"})
    stubber.add_response(
        "get_change", {"ChangeInfo": pending | {"Status": "INSYNC"}}, {"Id": "/change/C9"}
    )
    result = provider.apply_change(Change(MX1, MX2))
    provider.wait_applied(result.change, interval=2.0)
    assert clock.slept == [2.0]


def test_stubber_refused_credentials_are_named(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, _ = stubbed
    stubber.add_client_error(
        "list_resource_record_sets",
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
    )
    with pytest.raises(
        DnsAuthError, match=r"dns\.route53\.access_key_id \(env:MXCTL_TEST_AWS_KEY\)"
    ):
        provider.read("example.test.", "MX")


def test_stubber_an_invalid_batch_for_another_reason_is_not_stale_nor_retried(
    stubbed: tuple[Route53Provider, Stubber, FakeClock],
) -> None:
    provider, stubber, clock = stubbed
    _listed(stubber, MX1)
    stubber.add_client_error(
        "change_resource_record_sets",
        "InvalidChangeBatch",
        "[RRSet with DNS name example.test. is not permitted in zone example.org.]",
        400,
    )
    with pytest.raises(DnsError, match="not permitted") as caught:
        provider.apply_change(Change(MX1, MX2))
    assert not isinstance(caught.value, StaleExpectation | DnsUnavailable)
    assert clock.slept == []


# -- settings ------------------------------------------------------------------------------
def test_route53_settings_problems_are_named() -> None:
    block = (
        'access_key_id = "env:MXCTL_TEST_AWS_KEY"\nprofile = "ops"\n'
        'endpoint_url = "http://route53.example.test"\nzone_ids = { "example.test" = 5 }\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(dns_toml("route53", block, []), Path("m.toml"), ENVIRON)
    problems = sorted(p.removeprefix("m.toml: ").split(":")[0] for p in caught.value.problems)
    assert problems == [
        "dns.route53.endpoint_url",
        "dns.route53.profile",
        "dns.route53.secret_access_key",
        "dns.route53.zone_ids.example.test",
    ]
    chain = parse_config(dns_toml("route53", "", []), environ=ENVIRON).dns.provider
    assert isinstance(chain, type(chain)) and chain.access_key_id is None
    assert "mxctl-test-secret" not in repr(
        parse_config(dns_toml("route53", KEYS, []), environ=ENVIRON).dns
    )
