"""A stand-in for the Cloudflare v4 DNS API: the project's ONE sanctioned stand-in server.

Cloudflare cannot be reached from the test machines and no emulator of its API exists, so
this module is a real HTTP server (http.server in a thread on 127.0.0.1) that speaks the
subset of the v4 API mxctl uses, and the tests drive it with the real `cloudflare` SDK
with `_strict_response_validation=True`, so every answer here must satisfy the SDK's
generated models. Every other DNS test runs against real BIND and PowerDNS servers.

It is stricter than kind: each behaviour below is Cloudflare's documented one, so the
tests fail where Cloudflare would (sources under developers.cloudflare.com unless noted):

- Routes: GET /zones (name filter, pagination); GET/POST /zones/{id}/dns_records (type,
  name, name.exact filters, pagination); GET/PUT/PATCH/DELETE /zones/{id}/dns_records/
  {rid}; POST /zones/{id}/dns_records/batch, run as deletes -> patches -> puts -> posts in
  one all-or-nothing transaction (api/resources/dns/subresources/records/methods/batch/).
- Batch size: at most 200 operations on a Free zone, 3,500 on paid plans
  (dns/manage-dns-records/how-to/batch-record-changes/); beyond it, HTTP 400.
- Non-atomic edge: "Cloudflare's distributed KV store must treat each record change as a
  single key-value pair. This means that the propagation of changes is not atomic"
  (same batch page). Every committed write is queued to an edge copy of the zone and
  applied there one record operation at a time, `edge_delay` seconds apart; `edge_rrset`
  reads that copy, `publish` is called with it after each step, `wait_edge` drains it.
- TTL: 60-86400 or 1 (automatic), 30 on Enterprise zones (dns/manage-dns-records/
  reference/ttl/); a refused TTL is HTTP 400 with the generic code 1004 "DNS Validation
  Error" and the reason, 9021, in `errors[].error_chain` (fundamentals/api/reference/
  deprecations/, "Error chains for DNS validation errors").
- Content: A must be an IPv4 address, AAAA an IPv6 address, MX/CNAME/NS targets host
  names (1004 with 9005 in the chain); MX needs a priority; only A/AAAA/CNAME may be
  proxied (9004).
- CNAME exclusivity: a CNAME cannot share its name with any other record (81053, 81054;
  dns/manage-dns-records/troubleshooting/records-with-same-name/).
- Stale and duplicate records: 81044 record does not exist, 81058 identical record.
- Auth: bearer token; a token that is not even well-formed is HTTP 400 6003 "Invalid
  request headers" with 6111 "Invalid format for Authorization header" in its chain; a
  well-formed unknown one 401 10000; email/key headers 403 9103.

"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import itertools
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/client/v4"
_NO_LOCK = contextlib.nullcontext()
NOW = "2026-11-28T00:00:00.000000Z"


TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_-]+")
HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?"
)
Chain = list[tuple[int, str]]


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, chain: Chain | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.chain = chain or []


def validation_error(code: int, message: str) -> ApiError:
    """Cloudflare's envelope for a refused record: generic 1004, the reason chained."""
    return ApiError(400, 1004, "DNS Validation Error", [(code, message)])


@dataclass
class Fault:
    # "429" | "500" | "502" | "503" | "slow" | "unsuccessful" | "lose_reply" |
    # "reject_post" (the batch's post number `index` fails validation, code 9005)
    kind: str
    method: str | None = None
    path: str | None = None  # regex searched in the path
    times: int = 1
    retry_after: float = 1.0
    delay: float = 0.0
    index: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


@dataclass
class Zone:
    id: str
    name: str
    name_servers: list[str]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: str = "free"  # "free" | "pro" | "business" | "enterprise"
    edge: dict[str, dict[str, Any]] = field(default_factory=dict)  # what resolvers get

    @property
    def min_ttl(self) -> int:
        return 30 if self.plan == "enterprise" else 60

    @property
    def batch_limit(self) -> int:
        return 200 if self.plan == "free" else 3500


# One record operation as the edge applies it: (record id, the record or None to delete).
EdgeStep = tuple[str, dict[str, Any] | None]


Publisher = Callable[[str, dict[str, dict[str, Any]]], None]


class CloudflareStandIn:
    def __init__(self, tokens: set[str], per_page_default: int = 100) -> None:
        self.tokens = tokens
        self.per_page_default = per_page_default
        self.zones: dict[str, Zone] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) as received
        self.writes: list[tuple[str, str]] = []  # committed (action, record id)
        self.publish: Publisher | None = None
        self.edge_delay = 0.0
        self._edge_queue: queue.Queue[tuple[Zone, list[EdgeStep]] | None] = queue.Queue()
        self._edge_thread = threading.Thread(target=self._edge_worker, daemon=True)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"

    def start(self) -> CloudflareStandIn:
        self.thread.start()
        self._edge_thread.start()
        return self

    def stop(self) -> None:
        self._edge_queue.put(None)
        self._edge_thread.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- state helpers for tests --------------------------------------------------------
    def add_zone(self, name: str, name_servers: list[str], plan: str = "free") -> Zone:
        zone = Zone(uuid.uuid4().hex, name, name_servers, plan=plan)
        self.zones[zone.id] = zone
        return zone

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones.values() if z.name == name)

    def add_record(self, zone_name: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            zone = self.zone(zone_name)
            record = self._new_record(zone, body)
            zone.records[record["id"]] = record
            zone.edge[record["id"]] = record
            return record

    def remove_records(self, zone_name: str, name: str, rtype: str) -> None:
        """Drop name+type at once, at the API and at the edge (another writer's doing)."""
        with self.lock:
            zone = self.zone(zone_name)
            for records in (zone.records, zone.edge):
                for rid, record in list(records.items()):
                    if record["name"] == name.rstrip(".") and record["type"] == rtype:
                        del records[rid]

    def edge_rrset(self, zone_name: str, name: str, rtype: str) -> list[str]:
        """What an edge answers for name+type now: the contents, MX with priority."""
        with self.lock:
            records = list(self.zone(zone_name).edge.values())
        return sorted(
            f"{int(r['priority'])} {r['content']}" if rtype == "MX" else str(r["content"])
            for r in records
            if r["name"] == name.rstrip(".") and r["type"] == rtype
        )

    def wait_edge(self, timeout: float = 10.0) -> None:
        """Block until every committed change has reached the edge."""
        end = time.monotonic() + timeout
        while self._edge_queue.unfinished_tasks:
            if time.monotonic() > end:
                raise TimeoutError("the stand-in's edge did not catch up")
            time.sleep(0.002)

    def _propagate(self, zone: Zone, steps: list[EdgeStep]) -> None:
        self._edge_queue.put((zone, copy.deepcopy(steps)))

    def _edge_worker(self) -> None:
        while True:
            item = self._edge_queue.get()
            try:
                if item is None:
                    return
                zone, steps = item
                for record_id, record in steps:
                    if self.edge_delay:
                        time.sleep(self.edge_delay)
                    with self.lock:
                        if record is None:
                            zone.edge.pop(record_id, None)
                        else:
                            zone.edge[record_id] = record
                        snapshot = copy.deepcopy(zone.edge)
                    if self.publish is not None:
                        self.publish(zone.name, snapshot)
            finally:
                self._edge_queue.task_done()

    def inject(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, **kwargs)
        self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock if method != "BATCH" else _NO_LOCK:
            for fault in self.faults:
                batch_only = fault.kind == "reject_post"
                if batch_only != (method == "BATCH"):
                    continue
                if fault.times > 0 and (batch_only or fault.matches(method, path)):
                    fault.times -= 1
                    return fault
        return None

    # -- records ------------------------------------------------------------------------
    def _new_record(
        self, zone: Zone, body: dict[str, Any], record_id: str | None = None
    ) -> dict[str, Any]:
        name = str(body.get("name", "")).lower().rstrip(".")
        rtype = body.get("type")
        if rtype not in ("A", "AAAA", "MX", "TXT", "CNAME", "NS"):
            raise ApiError(400, 9000, f"DNS record type {rtype!r} is invalid or not supported")
        if not name or not (name == zone.name or name.endswith("." + zone.name)):
            raise ApiError(400, 9007, f"name {name!r} is not in zone {zone.name}")
        ttl = body.get("ttl", 1)
        if not isinstance(ttl, int | float) or not (ttl == 1 or zone.min_ttl <= ttl <= 86400):
            raise validation_error(
                9021,
                f"Invalid TTL. Must be between {zone.min_ttl} and 86400 seconds, or 1 for "
                "automatic.",
            )
        content = str(body.get("content", ""))
        _check_content(rtype, content)
        proxiable = rtype in ("A", "AAAA", "CNAME")
        proxied = bool(body.get("proxied", False))
        if proxied and not proxiable:
            raise ApiError(400, 9004, f"This record type cannot be proxied: {rtype}")
        record: dict[str, Any] = {
            "id": record_id or f"{next(self._ids):032x}",
            "name": name,
            "type": rtype,
            "content": content,
            "ttl": ttl,
            "proxiable": proxiable,
            "proxied": proxied,
            "settings": {},
            "meta": {},
            "comment": body.get("comment"),
            "tags": [],
            "created_on": NOW,
            "modified_on": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if rtype == "MX":
            priority = body.get("priority")
            if not isinstance(priority, int | float) or not 0 <= priority <= 65535:
                raise ApiError(400, 9100, "MX records require a priority between 0 and 65535")
            record["priority"] = priority
        for other in zone.records.values():
            if other["id"] == record["id"] or other["name"] != name:
                continue
            if rtype == "CNAME" and other["type"] != "CNAME":
                raise ApiError(
                    400, 81053, "An A, AAAA, or CNAME record with that host already exists."
                )
            if rtype != "CNAME" and other["type"] == "CNAME":
                raise ApiError(400, 81054, "A CNAME record with that host already exists.")
        for other in zone.records.values():
            if other["id"] != record["id"] and all(
                other.get(k) == record.get(k) for k in ("name", "type", "content", "priority")
            ):
                raise ApiError(400, 81058, "An identical record already exists.")
        return record

    def _batch(self, zone: Zone, body: dict[str, Any]) -> dict[str, Any]:
        """Deletes, patches, puts, posts on a copy; committed only if every action succeeds."""
        count = sum(len(body.get(k) or []) for k in ("deletes", "patches", "puts", "posts"))
        if count > zone.batch_limit:
            raise ApiError(
                400,
                1004,
                f"Batch has {count} operations; this zone's plan allows {zone.batch_limit}",
            )
        work = copy.deepcopy(zone.records)
        shadow = Zone(zone.id, zone.name, zone.name_servers, work, zone.plan)
        out: dict[str, list[dict[str, Any]]] = {
            "deletes": [],
            "patches": [],
            "puts": [],
            "posts": [],
        }
        for item in body.get("deletes") or []:
            out["deletes"].append(self._require(shadow, item.get("id")))
            del work[item["id"]]
        for key in ("patches", "puts"):
            for item in body.get(key) or []:
                old = self._require(shadow, item.get("id"))
                merged = {**old, **item} if key == "patches" else dict(item)
                work[old["id"]] = self._new_record(shadow, merged, old["id"])
                out[key].append(work[old["id"]])
        reject = self._take_fault("BATCH", "reject_post")
        for index, item in enumerate(body.get("posts") or []):
            if reject is not None and reject.index == index:
                raise ApiError(400, 9005, f"posts[{index}]: Content for the record is invalid")
            record = self._new_record(shadow, item)
            work[record["id"]] = record
            out["posts"].append(record)
        zone.records = work
        steps: list[EdgeStep] = []
        for key, records in out.items():
            self.writes.extend((key, r["id"]) for r in records)
            steps += [(r["id"], None if key == "deletes" else r) for r in records]
        self._propagate(zone, steps)
        return out

    @staticmethod
    def _require(zone: Zone, record_id: Any) -> dict[str, Any]:
        record = zone.records.get(str(record_id))
        if record is None:
            raise ApiError(404, 81044, "Record does not exist.")
        return record

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        """Route one request; returns (result, result_info) or raises ApiError."""
        parts = path[len(PREFIX) :].strip("/").split("/")
        if parts == ["zones"] and method == "GET":
            zones = [z for z in self.zones.values() if _matches_name(z.name, query)]
            return self._page([_zone_json(z) for z in zones], query)
        if len(parts) < 3 or parts[0] != "zones" or parts[2] != "dns_records":
            raise ApiError(404, 7003, "Could not route to " + path)
        zone = self.zones.get(parts[1])
        if zone is None:
            raise ApiError(404, 7003, "Could not route to zone " + parts[1])
        rest = parts[3:]
        with self.lock:
            if not rest and method == "GET":
                found = [
                    r
                    for r in sorted(zone.records.values(), key=lambda r: r["id"])
                    if _matches_name(r["name"], query)
                    and ("type" not in query or r["type"] == query["type"][0])
                ]
                return self._page(found, query)
            if not rest and method == "POST":
                record = self._new_record(zone, body)
                zone.records[record["id"]] = record
                self.writes.append(("posts", record["id"]))
                self._propagate(zone, [(record["id"], record)])
                return record, None
            if rest == ["batch"] and method == "POST":
                return self._batch(zone, body), None
            if len(rest) == 1:
                old = self._require(zone, rest[0])
                if method == "GET":
                    return old, None
                if method == "DELETE":
                    del zone.records[old["id"]]
                    self.writes.append(("deletes", old["id"]))
                    self._propagate(zone, [(old["id"], None)])
                    return {"id": old["id"]}, None
                if method in ("PUT", "PATCH"):
                    merged = {**old, **body} if method == "PATCH" else body
                    zone.records[old["id"]] = self._new_record(zone, merged, old["id"])
                    self.writes.append((method.lower() + "es", old["id"]))
                    self._propagate(zone, [(old["id"], zone.records[old["id"]])])
                    return zone.records[old["id"]], None
        raise ApiError(405, 10000, f"{method} not allowed on {path}")

    def _page(self, items: list[Any], query: dict[str, list[str]]) -> tuple[Any, Any]:
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", [str(self.per_page_default)])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        total_pages = max(1, -(-len(items) // per_page))
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": total_pages,
        }
        return chunk, info

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with standin.lock:
                    standin.requests.append((self.command, self.path))
                fault = standin._take_fault(self.command, split.path)
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault is not None and fault.kind == "429":
                    self._send(
                        429,
                        _envelope(
                            None,
                            errors=[
                                (971, "Please wait and consider throttling your request speed")
                            ],
                        ),
                        {"Retry-After": f"{fault.retry_after:g}"},
                    )
                    return
                elif fault is not None and fault.kind.isdigit():
                    self._send(int(fault.kind), _envelope(None, errors=[(10000, "Internal error")]))
                    return
                elif fault is not None and fault.kind == "unsuccessful":
                    self._send(200, _envelope(None, errors=[(1000, "Temporary failure")]))
                    return
                auth = self.headers.get("Authorization", "")
                if self.headers.get("X-Auth-Email") or self.headers.get("X-Auth-Key"):
                    self._send(403, _envelope(None, errors=[(9103, "Unknown X-Auth-Key or Email")]))
                    return
                if auth.startswith("Bearer ") and not TOKEN_FORMAT.fullmatch(auth[7:]):
                    error = {
                        "code": 6003,
                        "message": "Invalid request headers",
                        "error_chain": [
                            {"code": 6111, "message": "Invalid format for Authorization header"}
                        ],
                    }
                    self._send(
                        400,
                        {"success": False, "errors": [error], "messages": [], "result": None},
                    )
                    return
                if not auth.startswith("Bearer ") or auth[7:] not in standin.tokens:
                    self._send(401, _envelope(None, errors=[(10000, "Authentication error")]))
                    return
                try:
                    body = json.loads(raw) if raw else {}
                    result, info = standin.handle(
                        self.command, split.path, parse_qs(split.query), body
                    )
                except ApiError as exc:
                    envelope = _envelope(None, errors=[(exc.code, exc.message)])
                    if exc.chain:
                        envelope["errors"][0]["error_chain"] = [
                            {"code": c, "message": m} for c, m in exc.chain
                        ]
                    self._send(exc.status, envelope)
                    return
                except (ValueError, KeyError, TypeError) as exc:
                    self._send(
                        400, _envelope(None, errors=[(9207, f"Invalid request body: {exc}")])
                    )
                    return
                if fault is not None and fault.kind == "lose_reply":
                    self.close_connection = True
                    self.connection.close()
                    return
                self._send(200, _envelope(result, info))

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        return Handler


def _check_content(rtype: str, content: str) -> None:
    if rtype in ("A", "AAAA"):
        version = 4 if rtype == "A" else 6
        try:
            valid = ipaddress.ip_address(content).version == version
        except ValueError:
            valid = False
        if not valid:
            raise validation_error(
                9005, f"Content for {rtype} record must be a valid IPv{version} address."
            )
    elif rtype in ("MX", "CNAME", "NS") and not HOSTNAME.fullmatch(content):
        raise validation_error(9005, f"Content for {rtype} record is invalid. Must be a host name.")
    elif not content:
        raise validation_error(9005, "Content for the record is invalid.")


def _matches_name(name: str, query: dict[str, list[str]]) -> bool:
    for key in ("name", "name.exact"):
        if key in query and name != query[key][0].lower().rstrip("."):
            return False
    return True


def _envelope(
    result: Any, info: Any = None, errors: list[tuple[int, str]] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "success": not errors,
        "errors": [{"code": c, "message": m} for c, m in errors or []],
        "messages": [],
        "result": result,
    }
    if info is not None:
        payload["result_info"] = info
    return payload


def _zone_json(zone: Zone) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": False,
        "type": "full",
        "development_mode": 0,
        "name_servers": zone.name_servers,
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "created_on": NOW,
        "modified_on": NOW,
        "activated_on": NOW,
        "account": {"id": "0" * 32, "name": "mxctl tests"},
        "owner": {"id": None, "type": "user", "email": None},
        "meta": {
            "step": 2,
            "custom_certificate_quota": 0,
            "page_rule_quota": 3,
            "phishing_detected": False,
        },
        "plan": {
            "id": "0" * 32,
            "name": "Free Website",
            "price": 0,
            "currency": "USD",
            "frequency": "",
            "is_subscribed": False,
            "can_subscribe": False,
            "legacy_id": "free",
            "legacy_discount": False,
            "externally_managed": False,
        },
        "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
    }
