"""Cloudflare cannot compare-and-swap a batch: a record added between our read and our
batch is kept, and only the verification at the nameservers can tell.

Server: the Cloudflare stand-in (lab/mxlab/standins/cloudflare.py) driven by the real SDK,
its edge served over DNS by lab/mxlab/standins/cloudflare_edge.py, which the verifier
asks directly (RD off, AA required) as it asks Cloudflare's nameservers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mxlab.standins.cloudflare_edge import EdgeNameserver

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.cloudflare import CloudflareProvider, mapping
from orchestrator.dns.factory import make_verifier
from orchestrator.dns.provider import Outcome
from orchestrator.dns.records import Change, RRset, extra_records

from .conftest import ProviderEnv, load_dns

MX1 = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
MX2 = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))
MX9 = {"name": "example.test", "type": "MX", "content": "mx9.example.test", "priority": 20,
       "ttl": 300}  # fmt: skip


@pytest.fixture
def edge(cf_setup: ProviderEnv) -> Iterator[tuple[ProviderEnv, DnsConfig]]:
    assert cf_setup.standin is not None
    server = EdgeNameserver(cf_setup.standin).start()
    try:
        text = cf_setup.config_text.replace(
            "nameservers = []", f'nameservers = ["{server.endpoint}"]'
        )
        assert server.endpoint in text
        yield cf_setup, load_dns(text)
    finally:
        server.stop()


def test_a_record_added_between_read_and_batch_is_kept_and_verification_names_it(
    edge: tuple[ProviderEnv, DnsConfig],
) -> None:
    env, config = edge
    assert env.standin is not None
    provider = env.provider(config)
    assert isinstance(provider, CloudflareProvider)
    read = provider._remote

    added: list[str] = []

    def read_then_another_writer_adds(*args: str) -> mapping.RemoteRRset:
        remote = read(*args)
        if not added:  # right after our first read, before our batch
            added.append(env.standin.add_record("example.test", MX9)["id"])  # type: ignore[union-attr]
        return remote

    provider._remote = read_then_another_writer_adds  # type: ignore[method-assign]
    results = provider.apply_changes([Change(MX1, MX2)])
    # The batch edited the record it read and never saw mx9: "applied", no refusal.
    assert [r.outcome for r in results] == [Outcome.APPLIED]
    env.standin.wait_edge()
    served = env.standin.edge_rrset("example.test", "example.test", "MX")
    assert served == ["10 mx2.example.test", "20 mx9.example.test"]
    # Our records are in place: the wait ends at once rather than at its deadline, and
    # the verification is the step that fails, naming the extra record.
    provider.wait_applied(Change(MX1, MX2), deadline=provider.clock.monotonic() + 0.2)
    report = make_verifier(config, provider, SYSTEM_CLOCK).wait(
        [MX2], deadline=SYSTEM_CLOCK.monotonic() + 0.3
    )
    assert not report.ok
    (server,) = report.servers
    assert len(server.problems) == 1
    assert server.problems[0].startswith(
        "example.test. MX: extra record 20 mx9.example.test. served beside the wanted "
        "10 mx2.example.test.: not in the plan"
    )
    assert "extra record 20 mx9.example.test." in report.summary()


def test_without_another_writer_the_same_rewrite_verifies(
    edge: tuple[ProviderEnv, DnsConfig],
) -> None:
    env, config = edge
    assert env.standin is not None
    provider = env.provider(config)
    assert [r.outcome for r in provider.apply_changes([Change(MX1, MX2)])] == [Outcome.APPLIED]
    env.standin.wait_edge()
    report = make_verifier(config, provider, SYSTEM_CLOCK).check([MX2])
    assert report.ok, report.summary()


@pytest.mark.parametrize(
    ("served", "wanted", "extra"),
    [
        (("10 a.", "20 b."), ("10 a.",), ("20 b.",)),  # one more than wanted
        (("10 a.", "20 b.", "30 c."), ("10 a.",), ("20 b.", "30 c.")),
        (("10 a.",), ("10 a.",), ()),  # exactly wanted
        (("10 b.",), ("10 a.",), ()),  # replaced, not extra: "serves ..., want ..."
        (("10 b.", "20 c."), ("10 a.",), ()),  # wanted missing: not a superset
        (("10 a.",), (), ()),  # wanted absent: anything served is the wrong set
        ((), ("10 a.",), ()),
    ],
)
def test_extra_records_are_those_beyond_every_wanted_one(
    served: tuple[str, ...], wanted: tuple[str, ...], extra: tuple[str, ...]
) -> None:
    got = extra_records(RRset("x.test.", "MX", 300, served), RRset("x.test.", "MX", 300, wanted))
    assert got == extra
