"""The provider contract, run against every provider setup (see conftest.PROVIDERS).

Real servers: BIND9 (RFC 2136), PowerDNS (RFC 2136 and its HTTP API). Cloudflare runs the
real SDK against lab/mxlab/standins/cloudflare.py, the project's one sanctioned stand-in.
Route 53 runs real boto3 against moto's server mode (lab/mxlab/standins/route53_moto.py); the
server-side refusals moto does not emulate are in test_route53.py, with Stubber.
"""

from __future__ import annotations

import pytest

from orchestrator.config import parse_config
from orchestrator.dns.factory import make_provider
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, RRset
from orchestrator.errors import DnsAuthError, StaleExpectation

from .conftest import ENVIRON, ProviderEnv

MX1_SET = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
MX2_SET = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))


def test_read_returns_the_served_rrset_with_mx_priority(env: ProviderEnv) -> None:
    provider = env.provider()
    assert provider.read("example.test.", "MX") == MX1_SET
    assert provider.read("Mail.Example.Test", "A") == RRset(
        "mail.example.test.", "A", 300, ("192.0.2.21",)
    )
    assert provider.read("mail.example.test.", "AAAA") == RRset("mail.example.test.", "AAAA")


def test_compare_and_swap_applies_and_waits(env: ProviderEnv) -> None:
    provider = env.provider()
    result = provider.apply_change(Change(MX1_SET, MX2_SET))
    assert result.outcome is Outcome.APPLIED
    provider.wait_applied(result.change)
    assert provider.read("example.test.", "MX") == MX2_SET


def test_retrying_an_applied_change_is_success_and_writes_nothing(env: ProviderEnv) -> None:
    provider = env.provider()
    provider.apply_change(Change(MX1_SET, MX2_SET))
    before = env.standin.writes[:] if env.standin else None
    again = provider.apply_change(Change(MX1_SET, MX2_SET))
    assert again.outcome is Outcome.ALREADY
    assert provider.read("example.test.", "MX") == MX2_SET
    if env.standin is not None:
        assert env.standin.writes == before


def test_stale_expectation_changes_nothing_and_reports_current(env: ProviderEnv) -> None:
    provider = env.provider()
    other = RRset("example.test.", "MX", 300, ("20 mx1.example.test.", "30 mx2.example.test."))
    env.force(other)  # another writer got there first
    with pytest.raises(StaleExpectation) as caught:
        provider.apply_change(Change(MX1_SET, MX2_SET))
    assert caught.value.current == other
    assert "20 mx1.example.test." in str(caught.value)
    assert provider.read("example.test.", "MX") == other


def test_create_and_delete_rrsets(env: ProviderEnv) -> None:
    provider = env.provider()
    absent = RRset("mail.example.test.", "AAAA")
    v6 = RRset("mail.example.test.", "AAAA", 120, ("2001:db8::22",))
    assert provider.apply_change(Change(absent, v6)).outcome is Outcome.APPLIED
    assert provider.read("mail.example.test.", "AAAA") == v6
    # Expecting "absent" when it exists is stale, whatever we wanted.
    with pytest.raises(StaleExpectation):
        provider.apply_change(Change(absent, RRset("mail.example.test.", "AAAA", 120, ("::1",))))
    assert provider.apply_change(Change(v6, absent)).outcome is Outcome.APPLIED
    assert not provider.read("mail.example.test.", "AAAA").exists


def test_multi_record_mx_set_keeps_priorities(env: ProviderEnv) -> None:
    provider = env.provider()
    both = RRset("example.test.", "MX", 600, ("20 mx2.example.test.", "10 mx1.example.test."))
    provider.apply_change(Change(MX1_SET, both))
    got = provider.read("example.test.", "MX")
    assert got == both
    assert got.mx_targets() == [(10, "mx1.example.test."), (20, "mx2.example.test.")]


def test_ttl_only_change_is_a_change(env: ProviderEnv) -> None:
    provider = env.provider()
    slower = RRset("example.test.", "MX", 3600, MX1_SET.rdatas)
    assert provider.apply_change(Change(MX1_SET, slower)).outcome is Outcome.APPLIED
    assert provider.read("example.test.", "MX").ttl == 3600


def test_wrong_credential_is_named_not_a_traceback(env: ProviderEnv) -> None:
    text, named = env.bad_credential
    config = parse_config(text, environ=ENVIRON).dns
    provider = make_provider(config, env.clock)
    env.providers.append(provider)
    with pytest.raises(DnsAuthError) as caught:
        provider.apply_change(Change(MX1_SET, MX2_SET))
    assert named in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert caught.value.__cause__ is None  # translated at the boundary, not chained
    assert env.provider().read("example.test.", "MX") == MX1_SET


def test_authoritative_servers_are_the_zone_ns_set(env: ProviderEnv) -> None:
    servers = env.provider().authoritative_servers("example.org.")
    assert [s.name for s in servers] == ["ns1.example.test.", "ns2.example.test."]
    assert all(s.addresses == ("127.0.0.1",) for s in servers)


def test_requests_are_counted(env: ProviderEnv) -> None:
    provider = env.provider()
    provider.read("example.test.", "MX")
    first = provider.requests
    assert first >= 1
    provider.apply_change(Change(MX1_SET, MX2_SET))
    assert provider.requests > first


def test_txt_rrset_for_acme_challenges_is_created_read_and_removed(env: ProviderEnv) -> None:
    # DNS-01 (orchestrator/certs): two names may share one _acme-challenge owner, so a
    # TXT RRset holds several validation strings; base64url text, quoted in zone files.
    provider = env.provider()
    name = "_acme-challenge.mail.example.test."
    absent = RRset(name, "TXT")
    one = RRset(name, "TXT", 60, ('"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"',))
    two = RRset(name, "TXT", 60, (*one.rdatas, "9ihDbjxF_kx-8iP2tXzpNKmP1Ki6_g4Q0vaZ3wXnjSw"))
    assert '"9ihDbjxF_kx-8iP2tXzpNKmP1Ki6_g4Q0vaZ3wXnjSw"' in two.rdatas  # quoted canonically
    assert provider.apply_change(Change(absent, one)).outcome is Outcome.APPLIED
    provider.wait_applied(Change(absent, one))
    assert provider.read(name, "TXT") == one
    assert provider.apply_change(Change(one, two)).outcome is Outcome.APPLIED
    assert provider.read(name, "TXT") == two
    assert provider.apply_change(Change(two, absent)).outcome is Outcome.APPLIED
    assert provider.read(name, "TXT") == absent
