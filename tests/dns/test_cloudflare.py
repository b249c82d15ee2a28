"""Cloudflare provider under faults, with the real SDK (strict response validation on).

The server is lab/mxlab/standins/cloudflare.py: the project's ONE sanctioned stand-in,
because Cloudflare cannot be reached from here. It speaks the v4 DNS API subset and
injects 429 + Retry-After, 5xx, slow replies, success:false and lost replies.
"""

from __future__ import annotations

import pytest

from orchestrator.dns.cloudflare import CloudflareProvider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, RRset
from orchestrator.errors import DnsError, DnsUnavailable

from .conftest import ProviderEnv

MX1_SET = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
MX2_SET = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
CHANGE = Change(MX1_SET, MX2_SET)


def _batches(env: ProviderEnv) -> list[tuple[str, str]]:
    assert env.standin is not None
    return [r for r in env.standin.requests if r[1].endswith("/dns_records/batch")]


def _mx_writes(env: ProviderEnv) -> list[tuple[str, str]]:
    assert env.standin is not None
    return env.standin.writes


def test_client_is_strict_and_sdk_retries_are_off(cf_setup: ProviderEnv) -> None:
    provider = cf_setup.provider()
    assert isinstance(provider, CloudflareProvider)
    assert provider.client._strict_response_validation is True
    assert provider.client.max_retries == 0


def test_one_rewrite_makes_exactly_these_requests(cf_setup: ProviderEnv) -> None:
    provider = cf_setup.provider()
    result = provider.apply_change(CHANGE)
    provider.wait_applied(result.change)
    assert cf_setup.standin is not None
    paths = [f"{m} {p.split('?')[0].rsplit('/', 1)[-1]}" for m, p in cf_setup.standin.requests]
    assert paths == ["GET zones", "GET dns_records", "POST batch", "GET dns_records"]
    zone_query = cf_setup.standin.requests[0][1]
    assert "name=example.test" in zone_query
    list_query = cf_setup.standin.requests[1][1]
    assert "name.exact=example.test" in list_query and "type=MX" in list_query
    assert provider.requests == 4


def test_429_with_retry_after_is_honoured_and_applied_once(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("429", method="POST", path="batch", times=2, retry_after=7)
    result = cf_setup.provider().apply_change(CHANGE)
    assert result.outcome is Outcome.APPLIED
    assert cf_setup.clock.slept == [7.0, 7.0]  # the server's Retry-After, not our backoff
    assert len(_batches(cf_setup)) == 3
    assert [k for k, _ in _mx_writes(cf_setup)] == ["patches"]  # edited in place


def test_5xx_on_reads_and_writes_still_applies_once(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("503", method="GET", path="dns_records", times=1)
    cf_setup.standin.inject("502", method="POST", path="batch", times=1)
    result = cf_setup.provider().apply_change(CHANGE)
    assert result.outcome is Outcome.APPLIED
    assert [k for k, _ in _mx_writes(cf_setup)] == ["patches"]  # edited in place
    assert cf_setup.provider().read("example.test.", "MX") == MX2_SET


def test_lost_reply_after_the_write_is_not_applied_twice(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("lose_reply", method="POST", path="batch", times=1)
    result = cf_setup.provider().apply_change(CHANGE)
    # The first batch went through; the retry re-read, saw the desired set, wrote nothing.
    assert result.outcome is Outcome.ALREADY
    assert len(_batches(cf_setup)) == 1
    assert [k for k, _ in _mx_writes(cf_setup)] == ["patches"]  # edited in place
    assert cf_setup.provider().read("example.test.", "MX") == MX2_SET


def test_slow_reply_times_out_and_the_change_lands_once(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("slow", method="POST", path="batch", delay=3.0)  # timeout is 2 s
    provider = cf_setup.provider()
    provider.apply_change(CHANGE)
    assert provider.read("example.test.", "MX") == MX2_SET
    mx_records = [
        r for r in cf_setup.standin.zone("example.test").records.values() if r["type"] == "MX"
    ]
    assert [r["content"] for r in mx_records] == ["mx2.example.test"]
    assert [k for k, _ in _mx_writes(cf_setup)] == ["patches"]  # edited in place


def test_success_false_is_retried_not_taken_for_success(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("unsuccessful", method="POST", path="batch", times=1)
    result = cf_setup.provider().apply_change(CHANGE)
    assert result.outcome is Outcome.APPLIED
    assert len(_batches(cf_setup)) == 2
    assert cf_setup.provider().read("example.test.", "MX") == MX2_SET


def test_persistent_429_stops_at_the_deadline(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("429", method="GET", path="dns_records", times=100, retry_after=20)
    provider = cf_setup.provider()
    deadline = cf_setup.clock.monotonic() + 50
    with pytest.raises(DnsUnavailable, match="rate-limited"):
        provider.apply_change(CHANGE, deadline)
    assert sum(cf_setup.clock.slept) <= 50
    assert cf_setup.clock.slept == [20.0, 20.0]


def test_batch_failing_half_way_leaves_the_zone_as_it_was(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    zone = cf_setup.standin.zone("example.test")
    before = dict(zone.records)
    two = RRset("example.test.", "MX", 300, ("10 mx2.example.test.", "20 mx1.example.test."))
    # mx1's record is edited into mx2 in place, then mx1 at 20 is posted: the post fails.
    cf_setup.standin.inject("reject_post", index=0)
    with pytest.raises(DnsError, match="9005") as caught:
        cf_setup.provider().apply_change(Change(MX1_SET, two))
    assert not isinstance(caught.value, DnsUnavailable)
    assert zone.records == before  # the in-place edit was rolled back
    assert cf_setup.standin.writes == []


def test_mail_names_are_never_proxied(cf_setup: ProviderEnv) -> None:
    provider = cf_setup.provider()
    plan = build_plan(cf_setup.config, provider, "mx2.example.test")
    apply_plan(plan, cf_setup.config, provider)
    assert cf_setup.standin is not None
    records = cf_setup.standin.zone("example.test").records.values()
    mail = [r for r in records if r["name"] == "mail.example.test"]
    assert {r["type"] for r in mail} == {"A", "AAAA"}
    assert all(r["proxied"] is False for r in mail)


def test_cloudflare_environment_variables_are_ignored(
    cf_setup: ProviderEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With CLOUDFLARE_EMAIL set, a default SDK client would drop our token for email+key.
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "someone@example.test")
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "the-wrong-token")
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/client/v4")
    assert cf_setup.provider().read("example.test.", "MX") == MX1_SET


def test_pagination_reads_every_page(cf_setup: ProviderEnv) -> None:
    three = RRset(
        "example.test.",
        "MX",
        300,
        ("10 mx1.example.test.", "20 mx2.example.test.", "30 mx9.example.test."),
    )
    cf_setup.force(three)
    provider = CloudflareProvider(
        cf_setup.config.provider,  # type: ignore[arg-type]
        cf_setup.config.zones,
        per_page=2,
    )
    cf_setup.providers.append(provider)
    assert provider.read("example.test.", "MX") == three
    assert cf_setup.standin is not None
    assert any("page=2" in p for _, p in cf_setup.standin.requests)


def test_unknown_zone_is_a_clear_error(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.zones.pop(cf_setup.standin.zone("example.org").id)
    with pytest.raises(DnsError, match=r"no zone named example\.org"):
        cf_setup.provider().read("example.org.", "MX")


def test_a_plan_is_one_batch_per_zone(cf_setup: ProviderEnv) -> None:
    provider = cf_setup.provider()
    plan = build_plan(cf_setup.config, provider, "mx2.example.test")
    results = apply_plan(plan, cf_setup.config, provider)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    batches = _batches(cf_setup)
    assert len(batches) == 2  # example.test (AAAA, A, MX) and example.org (MX)
    assert sorted(k for k, _ in _mx_writes(cf_setup)) == ["patches"] * 3 + ["posts"]


def test_lost_reply_of_a_zone_batch_is_applied_once(cf_setup: ProviderEnv) -> None:
    assert cf_setup.standin is not None
    cf_setup.standin.inject("lose_reply", method="POST", path="batch", times=1)
    provider = cf_setup.provider()
    plan = build_plan(cf_setup.config, provider, "mx2.example.test")
    results = apply_plan(plan, cf_setup.config, provider)
    # example.test's batch landed but its reply was lost: the retry found it done.
    assert [r.outcome for r in results] == [Outcome.ALREADY] * 3 + [Outcome.APPLIED]
    assert len(_batches(cf_setup)) == 2
    assert sorted(k for k, _ in _mx_writes(cf_setup)) == ["patches"] * 3 + ["posts"]
