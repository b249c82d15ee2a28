"""PowerDNS HTTP API provider: the exact calls one compare-and-swap makes, on real pdns."""

from __future__ import annotations

import json

import httpx

from orchestrator.dns.powerdns import PowerDnsProvider
from orchestrator.dns.records import Change, RRset

from .conftest import ProviderEnv

MX1_SET = RRset("example.test.", "MX", 300, ("10 mx1.example.test.",))
MX2_SET = RRset("example.test.", "MX", 300, ("10 mx2.example.test.",))


def test_one_cas_is_read_patch_reread(pdns_setup: ProviderEnv) -> None:
    provider = pdns_setup.provider()
    assert isinstance(provider, PowerDnsProvider)
    seen: list[tuple[str, str, object]] = []

    def record(request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))

    provider.http.event_hooks["request"].append(record)
    provider.apply_change(Change(MX1_SET, MX2_SET))
    provider.wait_applied(Change(MX1_SET, MX2_SET))  # the re-read already proved it
    zone = "/api/v1/servers/localhost/zones/example.test."
    assert seen == [
        ("GET", zone, None),
        (
            "PATCH",
            zone,
            {
                "rrsets": [
                    {
                        "name": "example.test.",
                        "type": "MX",
                        "changetype": "REPLACE",
                        "ttl": 300,
                        "records": [{"content": "10 mx2.example.test.", "disabled": False}],
                    }
                ]
            },
        ),
        ("GET", zone, None),
    ]


def test_delete_uses_changetype_delete(pdns_setup: ProviderEnv) -> None:
    provider = pdns_setup.provider()
    bodies: list[object] = []
    provider.http.event_hooks["request"].append(
        lambda r: bodies.append(json.loads(r.content)) if r.method == "PATCH" else None
    )
    a = RRset("mail.example.test.", "A", 300, ("192.0.2.21",))
    provider.apply_change(Change(a, RRset("mail.example.test.", "A")))
    assert bodies == [
        {"rrsets": [{"name": "mail.example.test.", "type": "A", "changetype": "DELETE"}]}
    ]
    assert not provider.read("mail.example.test.", "A").exists
