"""PowerDNS Authoritative HTTP API: read the zone, compare, PATCH the RRset, re-read.

The API has no compare-and-swap: between our read and our PATCH another writer could
change the RRset. We keep that window to two requests and re-read after the write to
prove the result; for a server-side CAS on PowerDNS use the rfc2136 provider with
`dnsupdate=yes` and TSIG-ALLOW-DNSUPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from orchestrator.clock import Clock
from orchestrator.config.fields import Reader, Table
from orchestrator.config.secrets import Secret
from orchestrator.dns.provider import BaseProvider, Nameserver, Outcome
from orchestrator.dns.records import Change, RRset
from orchestrator.dns.registry import ProviderSettings
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import DnsAuthError, DnsError, DnsUnavailable, StaleExpectation


@dataclass(frozen=True)
class PowerDnsSettings(ProviderSettings):
    api_url: str
    api_key: Secret
    server_id: str


def parse_powerdns(reader: Reader, table: Table, where: str) -> PowerDnsSettings:
    known = {"api_url", "api_key", "server_id", "timeout", "allow_insecure_http"}
    reader.reject_unknown(table, known, where)
    insecure = reader.boolean(table, "allow_insecure_http", where, False)
    return PowerDnsSettings(
        timeout=reader.number(table, "timeout", where, 10.0, 0.1, 300.0),
        api_url=reader.api_url(table, "api_url", where, True, insecure) or "",
        api_key=reader.secret(table, "api_key", where),
        server_id=reader.string(table, "server_id", where, default="localhost"),
    )


class PowerDnsProvider(BaseProvider):
    kind: ClassVar[str] = "powerdns"
    APPLIED_ON_WRITE: ClassVar[bool] = True  # _write re-reads and checks the result

    def __init__(
        self,
        settings: PowerDnsSettings,
        zones: tuple[str, ...],
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, zones, policy, clock)
        self.settings = settings
        self.http = httpx.Client(
            base_url=f"{settings.api_url}/api/v1/servers/{settings.server_id}",
            headers={"X-API-Key": settings.api_key.reveal(), "Accept": "application/json"},
            timeout=settings.timeout,
            event_hooks={"request": [lambda _request: self.count_request()]},
        )

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> PowerDnsSettings:
        return parse_powerdns(reader, table, where)

    def close(self) -> None:
        self.http.close()

    # -- transport ----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        where = f"PowerDNS API {self.settings.api_url} ({method} {path})"
        try:
            response = self.http.request(method, path, json=body)
        except httpx.TimeoutException:
            raise DnsUnavailable(f"{where}: no answer in {self.settings.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise DnsUnavailable(f"{where}: {exc}") from None
        if response.status_code in (401, 403):
            raise DnsAuthError(
                f"{where}: the API key was rejected (HTTP {response.status_code}); check "
                f"dns.powerdns.api_key ({self.settings.api_key.reference}) against the "
                "server's api-key"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise DnsUnavailable(f"{where}: HTTP {response.status_code} {_message(response)}")
        if response.status_code == 404:
            raise DnsError(
                f"{where}: not found ({_message(response)}); check dns.powerdns.server_id "
                "and that the zone exists on the server"
            )
        if response.status_code >= 400:
            raise DnsError(f"{where}: HTTP {response.status_code} {_message(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DnsError(f"{where}: the answer is not JSON: is api_url a PowerDNS API?") from None

    # -- mapping ------------------------------------------------------------------------
    def _zone(self, zone: str) -> dict[str, Any]:
        data = self._call("GET", f"/zones/{zone}")
        if not isinstance(data, dict) or not isinstance(data.get("rrsets"), list):
            raise DnsError(f"PowerDNS API returned no rrsets for zone {zone}")
        return data

    @staticmethod
    def _pick(zone_data: dict[str, Any], name: str, rtype: str) -> RRset:
        for rrset in zone_data["rrsets"]:
            if rrset.get("name", "").lower() == name and rrset.get("type") == rtype:
                contents = tuple(
                    r["content"] for r in rrset.get("records", []) if not r.get("disabled")
                )
                return RRset(name, rtype, int(rrset.get("ttl", 0)), contents)
        return RRset(name, rtype)

    # -- hooks --------------------------------------------------------------------------
    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        return self._pick(self._zone(zone), name, rtype)

    def _write(self, zone: str, change: Change) -> Outcome:
        name, rtype = change.key
        current = self._read(zone, name, rtype)
        if current.serves_as(change.desired):
            return Outcome.ALREADY
        if not current.same_data(change.expected):
            raise StaleExpectation(f"PowerDNS serves {current.describe()}")
        desired = change.desired
        rrset: dict[str, Any] = {"name": name, "type": rtype}
        if desired.exists:
            rrset |= {
                "changetype": "REPLACE",
                "ttl": desired.ttl,
                "records": [{"content": c, "disabled": False} for c in desired.rdatas],
            }
        else:
            rrset["changetype"] = "DELETE"
        self._call("PATCH", f"/zones/{zone}", {"rrsets": [rrset]})
        after = self._read(zone, name, rtype)
        if not after.serves_as(desired):
            raise DnsError(
                f"PowerDNS accepted the change of {name} {rtype} but now serves "
                f"{after.describe()}: another writer is changing this record"
            )
        return Outcome.APPLIED

    def _nameservers(self, zone: str) -> list[Nameserver]:
        return self._servers_at(self._pick(self._zone(zone), zone, "NS").rdatas)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)[:200]
