"""Route 53 for the tests: moto's server mode on loopback, driven by real boto3 over HTTP.

moto is a maintained emulator of the AWS APIs (PyPI `moto[server]`), started here in a
thread on 127.0.0.1. It accepts any key (its IAM signature check does not verify Route
53 requests in server mode), so the contract's bad-credential case uses a missing AWS
profile, which fails in botocore before any request. It is faithful to the request and
response shapes, not to Route 53's compare-and-swap: it accepts a DELETE that does not
match the current RRset, applies a ChangeBatch change by change, and always answers
INSYNC. The contract suite holds on it because the provider reads and compares before
each write; the server-side refusals are tested with botocore's Stubber (test_route53.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from mxlab.standins.dnsservers import ZONES, zone_text
from orchestrator.dns.records import RRset


@dataclass
class MotoRoute53:
    server: ThreadedMotoServer
    url: str
    access_key: str = "mxctl-test-key"
    secret_key: str = "mxctl-test-secret"

    def client(self) -> Any:
        return boto3.client(
            "route53",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> MotoRoute53:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoRoute53(server, f"http://{host}:{port}")


def reset_zones(moto: MotoRoute53) -> None:
    """Fresh baseline zones, as BIND and the Cloudflare stand-in hold them, NS included.

    moto is reset first: it checks a CREATE against its journal of earlier changes, so a
    CREATE identical to one made in an earlier test would be refused as existing."""
    httpx.post(f"{moto.url}/moto-api/reset", timeout=5).raise_for_status()
    client = moto.client()
    for zone in ZONES:
        found = client.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
        zone_id = next((z["Id"] for z in found if z["Name"] == zone), None)
        if zone_id is None:
            zone_id = client.create_hosted_zone(Name=zone, CallerReference=zone)["HostedZone"]["Id"]
        records = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        deletes = [
            {"Action": "DELETE", "ResourceRecordSet": r}
            for r in records
            if r["Type"] not in ("SOA", "NS")
        ]
        if deletes:
            client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": deletes}
            )
        wanted: dict[tuple[str, str], list[str]] = {}
        for line in zone_text(zone, ("127.0.0.1", "127.0.0.1")).splitlines():
            if line.startswith("$") or " SOA " in line:
                continue
            owner, rtype, *rest = line.split()
            name = zone if owner == "@" else f"{owner}.{zone}"
            value = " ".join(rest)
            if rtype == "MX" and not value.endswith("."):
                value += f".{zone}"
            wanted.setdefault((name, rtype), []).append(value)
        upserts = [upsert(RRset(n, t, 300, tuple(v))) for (n, t), v in wanted.items()]
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": upserts})


def upsert(rrset: RRset) -> dict[str, Any]:
    return {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": rrset.name,
            "Type": rrset.rtype,
            "TTL": rrset.ttl,
            "ResourceRecords": [{"Value": v} for v in rrset.rdatas],
        },
    }


def force(moto: MotoRoute53, rrset: RRset) -> None:
    """Set an RRset behind the provider's back (another writer)."""
    client = moto.client()
    zone = next(z for z in ZONES if rrset.name.endswith(z))
    found = client.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
    zone_id = next(z["Id"] for z in found if z["Name"] == zone)
    if rrset.exists:
        change = upsert(rrset)
    else:
        page = client.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=rrset.name, StartRecordType=rrset.rtype
        )["ResourceRecordSets"]
        current = [r for r in page if r["Name"] == rrset.name and r["Type"] == rrset.rtype]
        if not current:
            return
        change = {"Action": "DELETE", "ResourceRecordSet": current[0]}
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [change]})
