"""A small etcd v3 client over etcd's JSON gateway (`/v3/...`), with httpx.

Only what the controller cluster needs: range, a compare-and-swap transaction, delete,
and leases (grant, one keepalive, revoke). Keys and values are base64 on the wire and
64-bit numbers come back as strings; this module hides both. Every HTTP or etcd failure
becomes `EtcdUnavailable` (no quorum, no member reachable, timeout), so callers never see
an httpx exception. Members are tried in order, starting with the last one that answered:
a member cut off costs its timeout once, not on every call (a lease renewed after three
calls that each waited out a dead first member would expire on the way).

Why the gateway and not a gRPC client: see README ("Controller cluster").
"""

from __future__ import annotations

import base64
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from orchestrator.errors import MxctlError


class EtcdUnavailable(MxctlError):
    """No etcd member answered with a committed result (down, partitioned, no quorum)."""


class EtcdRejected(MxctlError):
    """etcd answered but refused the request (a bad request, or a permission)."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction: `target` of `key` `result` `number` (e.g. the
    key's CREATE revision EQUAL 0: it does not exist)."""

    key: str
    target: str  # CREATE | MOD | VERSION | LEASE
    number: int
    result: str = "EQUAL"

    def to_json(self) -> dict[str, str]:
        field = {"CREATE": "create_revision", "MOD": "mod_revision", "VERSION": "version"}
        name = field.get(self.target, "lease")
        return {"key": _b64(self.key), "target": self.target, "result": self.result,
                name: str(self.number)}  # fmt: skip


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store's revision after the transaction
    current: tuple[KeyValue, ...]  # on failure: what the compared keys hold now


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """Members checked against `ca`; this controller known by its client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` (etcd's convention)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return _b64(bytes(raw))


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(raw["key"]).decode(),
        value=base64.b64decode(raw.get("value", "")),
        create_revision=int(raw.get("create_revision", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
        lease=int(raw.get("lease", 0)),
    )


class EtcdClient:
    def __init__(
        self, endpoints: Sequence[str], timeout: float = 2.0, tls: TlsFiles | None = None
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._answered = 0  # index of the member that answered last: tried first
        verify: ssl.SSLContext | bool = True
        if tls is not None:
            verify = tls.context()
        # A short timeout: a member without quorum blocks a linearizable read until
        # etcd's own request timeout (seconds); the controller must learn it sooner.
        self._http = httpx.Client(timeout=timeout, verify=verify)

    def close(self) -> None:
        self._http.close()

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        failures = []
        count = len(self.endpoints)
        for index in ((self._answered + i) % count for i in range(count)):
            endpoint = self.endpoints[index]
            try:
                reply = self._http.post(f"{endpoint}/v3/{path}", json=body)
                data = reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                failures.append(f"{endpoint}: {exc or type(exc).__name__}")
                continue
            if isinstance(data, dict) and "error" not in data and reply.status_code == 200:
                self._answered = index
                return data
            message = data.get("message", reply.text) if isinstance(data, dict) else reply.text
            code = data.get("code") if isinstance(data, dict) else None
            # gRPC codes 3 (invalid), 5 (not found), 7 (permission): etcd said no.
            if code in (3, 5, 7):
                raise EtcdRejected(f"etcd {endpoint} refused /v3/{path}: {message}")
            failures.append(f"{endpoint}: {message}")
        raise EtcdUnavailable(f"no etcd member answered /v3/{path}: {'; '.join(failures)}")

    def get(self, key: str) -> KeyValue | None:
        kvs = self._call("kv/range", {"key": _b64(key)}).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> list[KeyValue]:
        reply = self._call("kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        return [_kv(raw) for raw in reply.get("kvs", [])]

    def txn(self, compares: Sequence[Compare], puts: Sequence[Put]) -> TxnResult:
        """Write every put when every compare holds, else nothing; on failure the result
        carries what the compared keys hold now."""
        success = [
            {"request_put": {"key": _b64(p.key), "value": _b64(p.value), "lease": str(p.lease)}}
            for p in puts
        ]
        failure = [{"request_range": {"key": _b64(c.key)}} for c in compares]
        reply = self._call(
            "kv/txn",
            {"compare": [c.to_json() for c in compares], "success": success, "failure": failure},
        )
        revision = int(reply.get("header", {}).get("revision", 0))
        if reply.get("succeeded", False):
            return TxnResult(True, revision, ())
        current = tuple(
            _kv(raw)
            for response in reply.get("responses", [])
            for raw in response.get("response_range", {}).get("kvs", [])
        )
        return TxnResult(False, revision, current)

    def delete(self, key: str) -> None:
        self._call("kv/deleterange", {"key": _b64(key)})

    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (its id, the TTL etcd granted, which may exceed the one asked)."""
        reply = self._call("lease/grant", {"TTL": str(ttl)})
        return int(reply["ID"]), int(reply["TTL"])

    def keepalive(self, lease: int) -> int:
        """Renew a lease once; its remaining TTL in seconds, 0 when it has expired."""
        result = self._call("lease/keepalive", {"ID": str(lease)}).get("result", {})
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        with contextlib.suppress(EtcdRejected):  # already expired: nothing to revoke
            self._call("lease/revoke", {"ID": str(lease)})

    def status(self) -> dict[str, Any]:
        return self._call("maintenance/status", {})
