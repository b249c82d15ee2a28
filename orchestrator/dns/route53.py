"""Amazon Route 53 (boto3): read, compare, then DELETE the exact current RRset and CREATE
the new one in one ChangeBatch.

Route 53 applies a ChangeBatch all-or-nothing, and a DELETE must name the RRset exactly
as it is (TTL and every value): if another writer changed it since our read, the whole
batch fails with InvalidChangeBatch and nothing changes, which is a server-side
compare-and-swap. The DELETE repeats the record set exactly as our read returned it,
not the plan's expectation: the plan compares data without TTLs (a planned move lowers
them), and Route 53 refuses a DELETE whose TTL is not the current one (moto accepts it).
The read first lets an idempotent retry end as "already desired" without a refused
write. A change is applied once GetChange says INSYNC (every Route 53 authoritative
server has it). A change reached without an id of ours to ask about (the reply to our
write was lost and the retry found it done, or another writer made it) is applied once
each of the zone's servers, asked directly, serves it: the API lists a change at once,
before the servers serve it.

Retries: botocore retries throttling, 5xx and connection errors by itself (3 attempts
in "standard" mode, 5 in "legacy"), and we retry the whole read-compare-write under
tenacity with the failover deadline; both at once would multiply attempts and overrun
the deadline. botocore's are turned off (`total_max_attempts=1`), so one attempt is one
HTTP request, each counted at `before-send`.

Credentials: explicit `access_key_id`/`secret_access_key` secret references, or a named
`profile`, or else the usual AWS chain (environment, shared files, instance role).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
import botocore.config
import botocore.exceptions

from orchestrator.clock import Clock
from orchestrator.config.dns_section import VerifySettings
from orchestrator.config.fields import Reader, Table, join
from orchestrator.config.secrets import Secret
from orchestrator.dns.provider import BaseProvider, Nameserver, Outcome
from orchestrator.dns.records import Change, RRset, normalise_name
from orchestrator.dns.registry import ProviderSettings
from orchestrator.dns.retry import RetryPolicy
from orchestrator.dns.verify import Verifier
from orchestrator.errors import DnsAuthError, DnsError, DnsUnavailable, StaleExpectation

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client

AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "InvalidSignatureException",
}
RETRY_CODES = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "ServiceUnavailable"}
# InvalidChangeBatch messages that mean "the RRset is not what the batch expected".
STALE_MESSAGES = ("but it was not found", "but it already exists", "values provided do not match")


@dataclass(frozen=True)
class Route53Settings(ProviderSettings):
    region: str
    profile: str | None
    access_key_id: Secret | None
    secret_access_key: Secret | None
    session_token: Secret | None
    endpoint_url: str | None
    zone_ids: dict[str, str]  # absolute zone name -> hosted zone id; others looked up


def parse_route53(reader: Reader, table: Table, where: str) -> Route53Settings:
    known = {
        "region",
        "profile",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "endpoint_url",
        "allow_insecure_http",
        "zone_ids",
        "timeout",
    }
    reader.reject_unknown(table, known, where)
    insecure = reader.boolean(table, "allow_insecure_http", where, False)
    keys = [k for k in ("access_key_id", "secret_access_key") if k in table]
    if len(keys) == 1:
        missing = {"access_key_id", "secret_access_key"} - set(keys)
        reader.problem(join(where, missing.pop()), "required with " + keys[0])
    if keys and "profile" in table:
        reader.problem(join(where, "profile"), "give a profile or explicit keys, not both")
    if "session_token" in table and not keys:
        reader.problem(join(where, "session_token"), "only with access_key_id")
    zone_ids: dict[str, str] = {}
    for zone, zone_id in reader.table(table, "zone_ids", where, required=False).items():
        try:
            name = normalise_name(zone)
        except ValueError as exc:
            reader.problem(join(join(where, "zone_ids"), zone), str(exc))
            continue
        if not isinstance(zone_id, str) or not zone_id.strip():
            reader.problem(join(join(where, "zone_ids"), zone), "must be a hosted zone id")
            continue
        zone_ids[name] = zone_id.strip().removeprefix("/hostedzone/")
    return Route53Settings(
        timeout=reader.number(table, "timeout", where, 10.0, 0.1, 300.0),
        region=reader.string(table, "region", where, default="us-east-1"),
        profile=reader.string(table, "profile", where) if "profile" in table else None,
        access_key_id=_secret(reader, table, "access_key_id", where),
        secret_access_key=_secret(reader, table, "secret_access_key", where),
        session_token=_secret(reader, table, "session_token", where),
        endpoint_url=reader.api_url(table, "endpoint_url", where, False, insecure),
        zone_ids=zone_ids,
    )


def _secret(reader: Reader, table: Table, key: str, where: str) -> Secret | None:
    return reader.secret(table, key, where) if key in table else None


class Route53Provider(BaseProvider):
    kind: ClassVar[str] = "route53"
    SERVER_SIDE_CAS: ClassVar[bool] = True  # DELETE exact + CREATE, all-or-nothing
    BATCH_WRITES: ClassVar[bool] = True  # one ChangeBatch per zone

    def __init__(
        self,
        settings: Route53Settings,
        zones: tuple[str, ...],
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, zones, policy, clock)
        self.settings = settings
        self.credential = (
            f"dns.route53.access_key_id ({settings.access_key_id.reference})"
            if settings.access_key_id
            else f"AWS profile {settings.profile}"
            if settings.profile
            else "the AWS credential chain (environment, shared files, instance role)"
        )
        self._client: Route53Client | None = None
        self._zone_ids = dict(settings.zone_ids)
        self._changes: dict[tuple[str, str], str] = {}  # (name, type) -> our change's id
        self._in_sync: set[str] = set()  # change ids GetChange reported INSYNC
        # (zone, RRset) -> whether every authoritative server serves it; replaceable so a
        # test can stand in for Route 53's servers.
        self.served_everywhere: Callable[[str, RRset], bool] = self._served_everywhere
        self.server_port = 53  # where the zone's servers answer (a test's are elsewhere)

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> Route53Settings:
        return parse_route53(reader, table, where)

    @property
    def client(self) -> Route53Client:
        """Built on first use, so a bad profile is reported by the call that needs it."""
        if self._client is None:
            try:
                self._client = self._build_client()
            except botocore.exceptions.ProfileNotFound:
                raise DnsAuthError(
                    f"Route 53: AWS profile {self.settings.profile} is not in the shared AWS "
                    "config or credentials files: check dns.route53.profile"
                ) from None
            self._client.meta.events.register("before-send.route53", self._on_send)
        return self._client

    def _build_client(self) -> Route53Client:
        s = self.settings
        session = boto3.session.Session(
            aws_access_key_id=s.access_key_id.reveal() if s.access_key_id else None,
            aws_secret_access_key=s.secret_access_key.reveal() if s.secret_access_key else None,
            aws_session_token=s.session_token.reveal() if s.session_token else None,
            profile_name=s.profile,
            region_name=s.region,
        )
        config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=s.timeout,
            read_timeout=s.timeout,
        )
        return session.client("route53", endpoint_url=s.endpoint_url, config=config)

    def _on_send(self, **_kwargs: Any) -> None:
        self.count_request()

    def forget_zone_ids(self) -> None:
        """Look hosted zones up again (one was deleted and created anew)."""
        self._zone_ids = dict(self.settings.zone_ids)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- transport ----------------------------------------------------------------------
    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        """One API call; every botocore exception leaves as one of ours, naming `what`."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            raise self._translate(exc, what) from None
        except botocore.exceptions.NoCredentialsError:
            raise DnsAuthError(
                f"Route 53: no AWS credentials for {what}: set dns.route53.access_key_id and "
                "secret_access_key (env:/file: references), a profile, or the usual AWS "
                "environment"
            ) from None
        except (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
        ) as exc:
            raise DnsUnavailable(f"Route 53 did not answer {what}: {exc}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise DnsError(f"Route 53 client failed during {what}: {exc}") from None

    def _translate(self, exc: botocore.exceptions.ClientError, what: str) -> DnsError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        text = f"Route 53 refused {what} ({code}: {message})"
        if code == "InvalidChangeBatch" and any(m in message for m in STALE_MESSAGES):
            return StaleExpectation(text)
        if code in AUTH_CODES or status in (401, 403):
            return DnsAuthError(
                f"Route 53 rejected the credentials from {self.credential} during {what} "
                f"({code}: {message}): check them and that they allow "
                "route53:ListResourceRecordSets, ChangeResourceRecordSets and GetChange"
            )
        if code in RETRY_CODES or status >= 500:
            return DnsUnavailable(text)
        return DnsError(text)

    # -- mapping ------------------------------------------------------------------------
    def _zone_id(self, zone: str) -> str:
        if zone not in self._zone_ids:
            page = self._call(
                f"hosted zone lookup {zone}",
                "list_hosted_zones_by_name",
                DNSName=zone,
                MaxItems="10",
            )
            found = [
                z
                for z in page["HostedZones"]
                if z["Name"].lower() == zone and not z.get("Config", {}).get("PrivateZone")
            ]
            if not found:
                raise DnsError(
                    f"Route 53 has no public hosted zone named {zone} visible to "
                    f"{self.credential}: check dns.zones, or set dns.route53.zone_ids"
                )
            self._zone_ids[zone] = found[0]["Id"].removeprefix("/hostedzone/")
        return self._zone_ids[zone]

    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        return self._read_as_served(zone, name, rtype)[0]

    def _read_as_served(
        self, zone: str, name: str, rtype: str
    ) -> tuple[RRset, dict[str, Any] | None]:
        """The RRset, and the record set exactly as Route 53 returned it (None: absent):
        a DELETE must repeat it to the letter, TTL included."""
        page = self._call(
            f"list {name} {rtype}",
            "list_resource_record_sets",
            HostedZoneId=self._zone_id(zone),
            StartRecordName=name,
            StartRecordType=rtype,
            MaxItems="1",
        )
        for found in page["ResourceRecordSets"]:
            if _unescape(found["Name"]) != name or found["Type"] != rtype:
                continue
            if "AliasTarget" in found or "SetIdentifier" in found:
                raise DnsError(
                    f"Route 53 holds {name} {rtype} as an alias or routing-policy record: "
                    "mxctl rewrites only simple records; replace it with a simple one"
                )
            records = found.get("ResourceRecords", [])
            values = tuple(r["Value"] for r in records)
            try:
                rrset = RRset(name, rtype, int(found.get("TTL", 0)), values)
            except ValueError as exc:
                raise DnsError(f"Route 53 returned {name} {rtype} unreadable: {exc}") from None
            served = {"Name": found["Name"], "Type": rtype, "TTL": found.get("TTL", 0),
                      "ResourceRecords": [{"Value": r["Value"]} for r in records]}  # fmt: skip
            return rrset, served
        return RRset(name, rtype), None

    def _write(self, zone: str, change: Change) -> Outcome:
        return self._write_batch(zone, [change])[0]

    def _write_batch(self, zone: str, changes: Sequence[Change]) -> list[Outcome]:
        """Read and compare (an idempotent retry ends here), then one ChangeBatch whose
        DELETEs carry the record sets exactly as just read: Route 53 re-checks them
        atomically. The plan's expectation is compared without its TTL (a planned move
        lowers TTLs meanwhile), but Route 53 refuses a DELETE whose TTL is not the
        current one, so the DELETE repeats what Route 53 served, not what was planned."""
        outcomes = []
        steps: list[dict[str, Any]] = []
        todo: list[Change] = []
        for change in changes:
            current, served = self._read_as_served(zone, *change.key)
            if current.serves_as(change.desired):
                outcomes.append(Outcome.ALREADY)
                # Reached without a change id of ours (a reply lost, or another writer):
                # an old id must not stand for it.
                self._changes.pop(change.key, None)
                continue
            if not current.same_data(change.expected):
                raise StaleExpectation(f"Route 53 serves {current.describe()}")
            outcomes.append(Outcome.APPLIED)
            todo.append(change)
            if served is not None:
                steps.append({"Action": "DELETE", "ResourceRecordSet": served})
            if change.desired.exists:
                steps.append({"Action": "CREATE", "ResourceRecordSet": _rrset(change.desired)})
        if todo:
            what = ", ".join(f"{c.desired.name} {c.desired.rtype}" for c in todo)
            answer = self._call(
                f"change of {what}",
                "change_resource_record_sets",
                HostedZoneId=self._zone_id(zone),
                ChangeBatch={"Comment": f"mxctl: {what}", "Changes": steps},
            )
            for change in todo:
                self._changes[change.key] = answer["ChangeInfo"]["Id"]
        return outcomes

    def _is_applied(self, zone: str, change: Change) -> bool:
        change_id = self._changes.get(change.key)
        if change_id is None:
            # No change id to ask GetChange about (the reply to our write was lost, or
            # another writer made it): Route 53's API shows a change at once, long before
            # its servers serve it, so ask the servers themselves.
            return self.served_everywhere(zone, change.desired)
        if change_id not in self._in_sync:
            info = self._call(f"status of change {change_id}", "get_change", Id=change_id)
            if info["ChangeInfo"]["Status"] != "INSYNC":
                return False
            self._in_sync.add(change_id)
        return True

    def _nameservers(self, zone: str) -> list[Nameserver]:
        return self._servers_at(sorted(self._read(zone, zone, "NS").rdatas))

    def _served_everywhere(self, zone: str, desired: RRset) -> bool:
        """Each of the zone's Route 53 servers, asked directly (RD off, AA required)."""
        settings = VerifySettings((), self.server_port, 0.0, 0.0, self.settings.timeout, False)
        return Verifier(settings, self.zones, self._nameservers, self.clock).check([desired]).ok


def _rrset(rrset: RRset) -> dict[str, Any]:
    return {
        "Name": rrset.name,
        "Type": rrset.rtype,
        "TTL": rrset.ttl,
        "ResourceRecords": [{"Value": v} for v in rrset.rdatas],
    }


def _unescape(name: str) -> str:
    """Route 53 returns some characters as \\ooo octal escapes (`*` as \\052)."""
    out, i = [], 0
    while i < len(name):
        if name[i] == "\\" and name[i + 1 : i + 4].isdigit():
            out.append(chr(int(name[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(name[i])
            i += 1
    return "".join(out).lower().rstrip(".") + "."
