"""Plans (and their safety rules) and verification at every authoritative server.

Run against the real BIND pair (primary + NOTIFY/AXFR secondary) and real PowerDNS.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.dns_section import VerifySettings
from orchestrator.dns.factory import make_verifier
from orchestrator.dns.plan import Plan, apply_plan, build_plan, check_plan
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, ChangeKind, RRset
from orchestrator.dns.verify import Verifier, serial_lt
from orchestrator.errors import StaleExpectation, UnsafePlan

from .conftest import ProviderEnv


def test_plan_to_mx2_is_typed_ordered_and_serialisable(bind_setup: ProviderEnv) -> None:
    plan = build_plan(bind_setup.config, bind_setup.provider(), "mx2.example.test")
    kinds = [(c.kind, c.key) for c in plan.changes]
    assert kinds == [
        (ChangeKind.CREATE, ("mail.example.test.", "AAAA")),
        (ChangeKind.UPDATE, ("mail.example.test.", "A")),
        (ChangeKind.UPDATE, ("example.org.", "MX")),
        (ChangeKind.UPDATE, ("example.test.", "MX")),
    ]
    raw = json.loads(json.dumps(plan.to_json()))
    assert raw["changes"][2]["desired"]["rdatas"] == ["10 mx2.example.test."]
    assert raw["changes"][2]["expected"]["rdatas"] == ["10 mx1.example.test."]
    assert Plan.from_json(raw) == plan


def test_plan_to_current_host_is_empty(bind_setup: ProviderEnv) -> None:
    plan = build_plan(bind_setup.config, bind_setup.provider(), "mx1.example.test.")
    assert plan.empty
    assert len(plan.unchanged) == 4
    assert "nothing to change" in plan.describe()


def test_unknown_mail_host_is_refused(bind_setup: ProviderEnv) -> None:
    with pytest.raises(UnsafePlan, match=r"mx7\.example\.test is not a configured mail host"):
        build_plan(bind_setup.config, bind_setup.provider(), "mx7.example.test")


def test_mx_at_a_name_without_address_is_refused(bind_setup: ProviderEnv) -> None:
    # mx9 is a configured mail host, but the zone has no A/AAAA for it.
    with pytest.raises(UnsafePlan, match=r"mx9\.example\.test\., which has no A or AAAA") as caught:
        build_plan(bind_setup.config, bind_setup.provider(), "mx9.example.test")
    assert len(caught.value.problems) == 2  # both zones' MX, reported together


def test_empty_mx_and_unowned_names_are_refused(bind_setup: ProviderEnv) -> None:
    mx = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
    unowned = RRset("www.example.test.", "A", 300, ("192.0.2.80",))
    plan = Plan(
        "mx1.example.test.",
        (
            Change(mx, RRset("example.test.", "MX")),
            Change(RRset("www.example.test.", "A"), unowned),
        ),
        (),
    )
    provider = bind_setup.provider()
    with pytest.raises(UnsafePlan) as caught:
        apply_plan(plan, bind_setup.config, provider)
    text = str(caught.value)
    assert "example.test. MX would be left empty" in text
    assert "www.example.test. A is not an owned record" in text
    assert provider.read("example.test.", "MX") == mx  # nothing applied


def test_out_of_zone_mx_target_uses_the_resolver(bind_setup: ProviderEnv) -> None:
    target = RRset("example.test.", "MX", 300, ("10 mx.elsewhere.example.",))
    plan = Plan("mx.elsewhere.example.", (Change(RRset("example.test.", "MX"), target),), ())
    asked: list[tuple[str, str]] = []

    def resolve(name: str, rtype: str) -> RRset:
        asked.append((name, rtype))
        return RRset(name, rtype, 60, ("192.0.2.99",) if rtype == "A" else ())

    def no_zone_read(name: str, rtype: str) -> RRset:
        return resolve(name, rtype)

    check_plan(plan, bind_setup.config, no_zone_read)
    assert asked == [("mx.elsewhere.example.", "A")]


def test_apply_then_verify_at_primary_and_secondary(bind_setup: ProviderEnv) -> None:
    config = bind_setup.config
    provider = bind_setup.provider()
    plan = build_plan(config, provider, "mx2.example.test")
    results = apply_plan(plan, config, provider)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    report = make_verifier(config, provider, SYSTEM_CLOCK).wait(plan.desired)
    assert report.ok, report.to_json()
    servers = {(s.zone, str(s.target)) for s in report.servers}
    zones = ("example.test.", "example.org.")
    assert servers == {(z, e) for z in zones for e in bind_setup.nameservers}
    for zone in ("example.test.", "example.org."):
        serials = {s.serial for s in report.servers if s.zone == zone}
        assert len(serials) == 1 and serials != {1}  # same everywhere, and bumped
    mx = [a for s in report.servers for a in s.answers if a.key == ("example.test.", "MX")]
    assert all(a.rdatas == ("10 mx2.example.test.",) for a in mx) and len(mx) == 2
    # Applying the same plan again is idempotent: every change is already in place.
    again = apply_plan(plan, config, provider)
    assert [r.outcome for r in again] == [Outcome.ALREADY] * 4


def test_verify_resolves_the_ns_set_when_no_addresses_are_configured(
    bind_setup: ProviderEnv,
) -> None:
    config = bind_setup.config
    provider = bind_setup.provider()
    port = int(bind_setup.nameservers[0].rsplit(":", 1)[1])
    settings = VerifySettings((), port, 5.0, 0.1, 2.0, True)
    verifier = Verifier(settings, config.zones, provider.authoritative_servers, SYSTEM_CLOCK)
    targets = verifier.targets("example.test.")
    assert [t.name for t in targets] == ["ns1.example.test.", "ns2.example.test."]
    report = verifier.check([RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))])
    assert report.ok, report.to_json()


def test_verify_reports_each_server_until_the_deadline(bind_setup: ProviderEnv) -> None:
    config = bind_setup.config
    verifier = make_verifier(config, bind_setup.provider(), SYSTEM_CLOCK)
    # The secondary first catches up with the baseline (an earlier test may have moved
    # the MX, and NOTIFY takes a moment): then every server serves mx1.
    right = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
    assert verifier.wait([right], deadline=SYSTEM_CLOCK.monotonic() + 10).ok
    wrong = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
    report = verifier.wait([wrong], deadline=SYSTEM_CLOCK.monotonic() + 0.3)
    assert not report.ok
    assert report.rounds >= 2
    assert len(report.servers) == 2
    for server in report.servers:
        assert server.problems == (
            "serves example.test. 300 MX 10 mx1.example.test., "
            "want example.test. 300 MX 10 mx2.example.test.",
        )
        assert server.serial is not None


def test_verify_compares_ttl(bind_setup: ProviderEnv) -> None:
    verifier = make_verifier(bind_setup.config, bind_setup.provider(), SYSTEM_CLOCK)
    report = verifier.check([RRset("example.test.", "MX", 600, ("10 mx1.example.test.",))])
    assert not report.ok
    assert "want example.test. 600 MX" in report.servers[0].problems[0]


def test_stale_plan_stops_without_changing_the_rest(bind_setup: ProviderEnv) -> None:
    config = bind_setup.config
    provider = bind_setup.provider()
    plan = build_plan(config, provider, "mx2.example.test")
    bind_setup.force(RRset("mail.example.test.", "A", 300, ("192.0.2.50",)))
    with pytest.raises(StaleExpectation, match=r"192\.0\.2\.50"):
        apply_plan(plan, config, provider)
    # One atomic UPDATE per zone: nothing in example.test changed, not even the AAAA
    # create that came before the stale A in the plan; example.org was never reached.
    assert provider.read("example.test.", "MX").rdatas == ("10 mx1.example.test.",)
    assert not provider.read("mail.example.test.", "AAAA").exists
    assert provider.read("example.org.", "MX").rdatas == ("10 mx1.example.test.",)


def test_batch_update_finishes_what_another_writer_half_did(bind_setup: ProviderEnv) -> None:
    provider = bind_setup.provider()
    mx2 = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
    a2 = RRset("mail.example.test.", "A", 300, ("192.0.2.22",))
    changes = [
        Change(provider.read("mail.example.test.", "A"), a2),
        Change(provider.read("example.test.", "MX"), mx2),
    ]
    bind_setup.force(a2)  # someone already moved `mail`; the MX is still as expected
    results = provider.apply_changes(changes)
    assert [r.outcome for r in results] == [Outcome.ALREADY, Outcome.APPLIED]
    assert provider.read("example.test.", "MX") == mx2


def test_powerdns_apply_and_verify(pdns_setup: ProviderEnv) -> None:
    config = pdns_setup.config
    provider = pdns_setup.provider()
    plan = build_plan(config, provider, "mx2.example.test")
    apply_plan(plan, config, provider)
    report = make_verifier(config, provider, SYSTEM_CLOCK).wait(plan.desired)
    assert report.ok, report.to_json()


def test_serial_arithmetic_is_rfc1982() -> None:
    assert serial_lt(1, 2)
    assert serial_lt(4294967295, 0)  # wrapped
    assert not serial_lt(0, 4294967295)
    assert not serial_lt(7, 7)


def test_standby_as_backup_mx_is_planned_applied_and_verified(bind_setup: ProviderEnv) -> None:
    """The healthy standby as a lower-priority MX: a remote MTA that finds the primary dead
    tries it in the same attempt. Client-facing names still point at the primary only."""
    config = bind_setup.config
    provider = bind_setup.provider()
    plan = build_plan(config, provider, "mx1.example.test", backup="mx2.example.test")
    assert [c.key for c in plan.changes] == [("example.org.", "MX"), ("example.test.", "MX")]
    assert all(c.desired.rdatas == ("10 mx1.example.test.", "20 mx2.example.test.")
               for c in plan.changes)  # fmt: skip
    assert "backup MX mx2.example.test" in plan.describe()
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    apply_plan(plan, config, provider)
    report = make_verifier(config, provider, SYSTEM_CLOCK).wait(plan.desired)
    assert report.ok, report.to_json()
    # Failing over drops the old primary from the set (it is fenced): one compare-and-swap.
    after = build_plan(config, provider, "mx2.example.test")
    mx = next(c for c in after.changes if c.key == ("example.test.", "MX"))
    assert mx.expected.rdatas == ("10 mx1.example.test.", "20 mx2.example.test.")
    assert mx.desired.rdatas == ("10 mx2.example.test.",)
    with pytest.raises(UnsafePlan, match="cannot back up itself"):
        build_plan(config, provider, "mx1.example.test", backup="mx1.example.test")
