"""The `[cluster]` section: several controllers on etcd, one leader acts (issue 15).

```toml
[cluster]
name = "mail-prod"                      # the cluster's keys live under /mxctl/<name>/
member = "ctl1"                         # this controller's name (unique in the cluster)
members = ["ctl1", "ctl2", "ctl3"]      # every controller: each one's observation is a vote
endpoints = ["https://10.0.0.5:2379", "https://10.0.0.6:2379", "https://10.0.0.7:2379"]
ca = "/etc/mxctl/etcd/ca.pem"           # TLS: the CA that signed the members' certificates...
cert = "/etc/mxctl/etcd/client.pem"     # ...and this controller's client certificate
key = "/etc/mxctl/etcd/client.key"      # (0600)
lease_ttl = 15                          # s; at least 2 x [policy] interval + safety_margin,
                                        # and the longest cycle + safety_margin (cycle.py)
safety_margin = 2.0                     # stop acting this long before the lease would end
```

Without the section the controller runs alone, as before. `http://` endpoints are refused
unless `allow_insecure_http = true` (a loopback test cluster): the leader key is the one
thing that must not be forged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cluster.etcd import TlsFiles
from orchestrator.config.fields import Reader, Table, join

KNOWN = {"name", "member", "members", "endpoints", "ca", "cert", "key", "lease_ttl",
         "safety_margin", "allow_insecure_http"}  # fmt: skip
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    member: str
    members: tuple[str, ...]
    endpoints: tuple[str, ...]
    tls: TlsFiles | None
    lease_ttl: int
    safety_margin: float


def _name(reader: Reader, raw: Table, key: str, path: str) -> str:
    value = reader.string(raw, key, path)
    if value and not NAME.match(value):
        reader.problem(join(path, key), f"{value!r}: letters, digits, '.', '_', '-' only")
    return value


def _tls(reader: Reader, raw: Table, path: str) -> TlsFiles | None:
    given = [k for k in ("ca", "cert", "key") if k in raw]
    if not given:
        return None
    files = {}
    for key in ("ca", "cert", "key"):
        value = reader.string(raw, key, path)
        if value and not Path(value).is_file():
            reader.problem(join(path, key), f"{value} is not a readable file")
        files[key] = Path(value)
    return TlsFiles(files["ca"], files["cert"], files["key"])


def parse_cluster(reader: Reader, raw: Table, path: str = "cluster") -> ClusterConfig:
    reader.reject_unknown(raw, KNOWN, path)
    insecure = reader.boolean(raw, "allow_insecure_http", path, False)
    endpoints = reader.strings(raw, "endpoints", path, required=True)
    where = join(path, "endpoints")
    for i, url in enumerate(endpoints):
        if not url.startswith(("http://", "https://")):
            reader.problem(join(where, i), f"{url!r} must be an http(s):// URL")
        elif url.startswith("http://") and not insecure:
            reader.problem(
                join(where, i),
                f"{url} is plain http://: use https:// with ca/cert/key, or set "
                f"{join(path, 'allow_insecure_http')} = true for a loopback test cluster",
            )
    tls = _tls(reader, raw, path)
    if tls is None and any(u.startswith("https://") for u in endpoints):
        reader.problem(path, "https:// endpoints need ca, cert and key (the client certificate)")
    ttl = reader.integer(raw, "lease_ttl", path, 15, 2, 300)
    margin = reader.number(raw, "safety_margin", path, max(1.0, ttl / 5), 0.1, 300.0)
    if margin * 2 >= ttl:
        reader.problem(
            join(path, "safety_margin"),
            f"{margin:g} s leaves too little of lease_ttl = {ttl} s: it must be under half of it",
        )
    member = _name(reader, raw, "member", path)
    members = reader.strings(raw, "members", path, required=True)
    if members and member and member not in members:
        reader.problem(join(path, "members"), f"must list this controller ({member!r}) too")
    if len(set(members)) != len(members):
        reader.problem(join(path, "members"), "lists a controller twice")
    return ClusterConfig(
        _name(reader, raw, "name", path),
        member,
        tuple(members),
        tuple(u.rstrip("/") for u in endpoints),
        tls,
        ttl,
        margin,
    )
