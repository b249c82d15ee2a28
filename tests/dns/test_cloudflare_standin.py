"""The Cloudflare stand-in itself, driven by the real SDK with strict response validation.

lab/mxlab/standins/cloudflare.py is the project's one sanctioned stand-in (Cloudflare is
unreachable from here). These tests pin the API subset it must speak, so the provider
tests run against answers the real SDK accepts as Cloudflare's.
"""

from __future__ import annotations

from collections.abc import Iterator

import cloudflare
import pytest
from mxlab.standins.cloudflare import CloudflareStandIn

TOKEN = "standin-token"


@pytest.fixture
def standin() -> Iterator[CloudflareStandIn]:
    server = CloudflareStandIn({TOKEN}).start()
    server.add_zone("example.test", ["ns1.example.test", "ns2.example.test"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(standin: CloudflareStandIn) -> Iterator[cloudflare.Cloudflare]:
    sdk = cloudflare.Cloudflare(
        api_token=TOKEN, base_url=standin.base_url, max_retries=0, _strict_response_validation=True
    )
    try:
        yield sdk
    finally:
        sdk.close()


def test_record_lifecycle(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone_id = standin.zone("example.test").id
    created = client.dns.records.create(
        zone_id=zone_id, name="mail.example.test", type="A", content="192.0.2.1", ttl=300
    )
    assert created is not None and created.proxied is False
    got = client.dns.records.get(created.id, zone_id=zone_id)
    assert got is not None and got.content == "192.0.2.1"
    updated = client.dns.records.update(
        created.id,
        zone_id=zone_id,
        name="mail.example.test",
        type="A",
        content="192.0.2.2",
        ttl=120,
    )
    assert updated is not None and updated.content == "192.0.2.2" and updated.ttl == 120
    edited = client.dns.records.edit(
        created.id, zone_id=zone_id, name="mail.example.test", type="A", content="192.0.2.3", ttl=60
    )
    assert edited is not None and edited.content == "192.0.2.3" and edited.ttl == 60
    deleted = client.dns.records.delete(created.id, zone_id=zone_id)
    assert deleted is not None and deleted.id == created.id
    with pytest.raises(cloudflare.NotFoundError) as caught:
        client.dns.records.get(created.id, zone_id=zone_id)
    assert caught.value.body["errors"][0]["code"] == 81044  # type: ignore[index]


def test_error_envelopes(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone_id = standin.zone("example.test").id
    body = {"zone_id": zone_id, "name": "example.test", "type": "MX", "ttl": 300}
    client.dns.records.create(**body, content="mx1.example.test", priority=10)  # type: ignore[arg-type]
    with pytest.raises(cloudflare.BadRequestError) as identical:
        client.dns.records.create(**body, content="mx1.example.test", priority=10)  # type: ignore[arg-type]
    assert identical.value.body == {
        "success": False,
        "errors": [{"code": 81058, "message": "An identical record already exists."}],
        "messages": [],
        "result": None,
    }
    with pytest.raises(cloudflare.BadRequestError, match="9004"):
        client.dns.records.create(**body, content="mx2.example.test", priority=10, proxied=True)  # type: ignore[arg-type]
    bad = cloudflare.Cloudflare(
        api_token="wrong",
        base_url=standin.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )
    with pytest.raises(cloudflare.AuthenticationError):
        bad.zones.list()
    bad.close()


def test_pagination(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    for i in range(24):
        standin.add_zone(f"z{i:02}.test", ["ns1.example.test"])
    names = [z.name for z in client.zones.list(per_page=10)]
    assert len(names) == 25 and names[0] == "example.test"
    pages = [r[1] for r in standin.requests if r[1].startswith("/client/v4/zones?")]
    assert len(pages) == 4  # 10 + 10 + 5, then the empty page that ends iteration


def test_batch_is_all_or_nothing(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone = standin.zone("example.test")
    keep = standin.add_record(
        "example.test", {"name": "mail.example.test", "type": "A", "content": "192.0.2.1"}
    )
    with pytest.raises(cloudflare.NotFoundError):
        client.dns.records.batch(
            zone_id=zone.id,
            deletes=[{"id": keep["id"]}, {"id": "f" * 32}],  # the second id does not exist
            posts=[{"name": "mail.example.test", "type": "A", "content": "192.0.2.9", "ttl": 1}],
        )
    assert list(zone.records) == [keep["id"]] and standin.writes == []
    result = client.dns.records.batch(
        zone_id=zone.id,
        deletes=[{"id": keep["id"]}],
        posts=[{"name": "mail.example.test", "type": "A", "content": "192.0.2.9", "ttl": 1}],
    )
    assert result is not None and result.deletes and result.posts
    assert [r["content"] for r in zone.records.values()] == ["192.0.2.9"]


def _validation(exc: cloudflare.APIStatusError) -> tuple[int, list[int]]:
    error = exc.body["errors"][0]  # type: ignore[index]
    return error["code"], [e["code"] for e in error.get("error_chain", [])]


def test_ttl_floor_with_the_real_envelope(
    standin: CloudflareStandIn, client: cloudflare.Cloudflare
) -> None:
    zone_id = standin.zone("example.test").id
    record = {"zone_id": zone_id, "name": "a.example.test", "type": "A", "content": "192.0.2.1"}
    with pytest.raises(cloudflare.BadRequestError) as caught:
        client.dns.records.create(**record, ttl=30)  # type: ignore[arg-type]
    assert _validation(caught.value) == (1004, [9021])
    assert caught.value.body["errors"][0]["message"] == "DNS Validation Error"  # type: ignore[index]
    assert client.dns.records.create(**record, ttl=1) is not None  # automatic
    standin.add_zone("corp.test", ["ns1.corp.test"], plan="enterprise")
    corp = standin.zone("corp.test").id
    made = client.dns.records.create(
        zone_id=corp, name="a.corp.test", type="A", content="192.0.2.1", ttl=30
    )
    assert made is not None and made.ttl == 30


def test_content_is_validated(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone_id = standin.zone("example.test").id
    cases = [("A", "not-an-ip"), ("A", "2001:db8::1"), ("AAAA", "192.0.2.1"), ("CNAME", "a b")]
    for rtype, content in cases:
        with pytest.raises(cloudflare.BadRequestError) as caught:
            client.dns.records.create(
                zone_id=zone_id,
                name="x.example.test",
                type=rtype,
                content=content,
                ttl=300,  # type: ignore[arg-type]
            )
        assert _validation(caught.value) == (1004, [9005]), (rtype, content)
    assert standin.zone("example.test").records == {}


def test_cname_is_exclusive(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone_id = standin.zone("example.test").id
    client.dns.records.create(
        zone_id=zone_id, name="mail.example.test", type="A", content="192.0.2.1", ttl=300
    )
    with pytest.raises(cloudflare.BadRequestError) as caught:
        client.dns.records.create(
            zone_id=zone_id, name="mail.example.test", type="CNAME", content="mx.test", ttl=300
        )
    assert _validation(caught.value) == (81053, [])
    client.dns.records.create(
        zone_id=zone_id, name="www.example.test", type="CNAME", content="mx.test", ttl=300
    )
    with pytest.raises(cloudflare.BadRequestError) as caught:
        client.dns.records.create(
            zone_id=zone_id, name="www.example.test", type="A", content="192.0.2.1", ttl=300
        )
    assert _validation(caught.value) == (81054, [])


def test_batch_operation_limit(standin: CloudflareStandIn, client: cloudflare.Cloudflare) -> None:
    zone_id = standin.zone("example.test").id
    posts = [
        {"name": f"h{i}.example.test", "type": "A", "content": "192.0.2.1", "ttl": 300}
        for i in range(201)
    ]
    with pytest.raises(cloudflare.BadRequestError, match="allows 200"):
        client.dns.records.batch(zone_id=zone_id, posts=posts)  # type: ignore[arg-type]
    assert standin.zone("example.test").records == {}
    assert client.dns.records.batch(zone_id=zone_id, posts=posts[:200]) is not None  # type: ignore[arg-type]


def test_malformed_token_is_400_6003_with_6111_chained(standin: CloudflareStandIn) -> None:
    bad = cloudflare.Cloudflare(
        api_token="abc/def",
        base_url=standin.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )
    with pytest.raises(cloudflare.BadRequestError) as caught:
        bad.zones.list()
    bad.close()
    assert _validation(caught.value) == (6003, [6111])


def test_edge_propagation_is_not_atomic(
    standin: CloudflareStandIn, client: cloudflare.Cloudflare
) -> None:
    """A delete-all-then-post batch commits at once at the API, but the edge takes it a
    record at a time: a reader of the edge sees the name with no records in between."""
    zone = standin.zone("example.test")
    old = standin.add_record(
        "example.test",
        {"name": "example.test", "type": "MX", "content": "mx1.test", "priority": 10},
    )
    states: list[list[str]] = []
    standin.publish = lambda _zone, records: states.append(
        sorted(r["content"] for r in records.values() if r["type"] == "MX")
    )
    standin.edge_delay = 0.5  # long enough to look at the edge before the first step
    client.dns.records.batch(
        zone_id=zone.id,
        deletes=[{"id": old["id"]}],
        posts=[
            {
                "name": "example.test",
                "type": "MX",
                "content": "mx2.test",
                "priority": 10,
                "ttl": 300,
            }
        ],  # type: ignore[list-item]
    )
    # The API already serves the new set; the edge does not yet.
    assert [r["content"] for r in zone.records.values()] == ["mx2.test"]
    assert standin.edge_rrset("example.test", "example.test", "MX") == ["10 mx1.test"]
    standin.wait_edge()
    assert states == [[], ["mx2.test"]]
    assert standin.edge_rrset("example.test", "example.test", "MX") == ["10 mx2.test"]
