"""The `[certs]` section: ACME issuance through the configured DNS provider (issue 17).

```toml
[certs]
directory_url = "https://acme.example/directory"  # the ACME server's directory
account_key = "/etc/mxctl/acme/account.key"       # created 0600 at first use
contact = "hostmaster@example.org"                 # optional: expiry notices
ca_bundle = "/etc/mxctl/acme/server-ca.pem"        # optional: trust for a private ACME CA
store = "/etc/mxctl/tls"                           # <store>/<name>/{fullchain,privkey}.pem
attempts = 3                                       # tries of one renewal before alerting
retry_wait = 60                                    # seconds between tries

[certs.certificates]                               # certificate name -> the names it covers
"mx1.example.test" = ["mx1.example.test", "mail.example.test"]
"mx2.example.test" = ["mx2.example.test", "mail.example.test"]
```
Every name must be in one of `dns.zones`: it is answered through that provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.fields import Reader, Table, join
from orchestrator.dns.records import normalise_name

DEFAULT_STORE = Path("/etc/mxctl/tls")


@dataclass(frozen=True)
class CertsConfig:
    directory_url: str
    account_key: Path
    store: Path
    certificates: dict[str, tuple[str, ...]]  # name -> DNS names (no trailing dot)
    contact: str | None = None
    ca_bundle: Path | None = None
    attempts: int = 3
    retry_wait: float = 60.0


def parse_certs(reader: Reader, raw: Table, path: str = "certs") -> CertsConfig:
    known = {"directory_url", "account_key", "contact", "ca_bundle", "store", "attempts"}
    reader.reject_unknown(raw, {*known, "retry_wait", "certificates"}, path)
    url = reader.string(raw, "directory_url", path)
    if url and not url.startswith("https://"):
        reader.problem(join(path, "directory_url"), "must be an https:// URL (RFC 8555)")
    key = _absolute(reader, raw, "account_key", path, None)
    bundle = _absolute(reader, raw, "ca_bundle", path, "") if "ca_bundle" in raw else None
    certificates: dict[str, tuple[str, ...]] = {}
    table = reader.table(raw, "certificates", path)
    for name in table:
        where = join(path, "certificates")
        names = reader.strings(table, name, where, required=True)
        try:
            clean = tuple(normalise_name(n).rstrip(".") for n in names)
        except ValueError as exc:
            reader.problem(join(where, name), str(exc))
            continue
        if "/" in name or name.startswith("."):
            reader.problem(join(where, name), "must be a plain name (it names a directory)")
        elif not clean:
            reader.problem(join(where, name), "name at least one DNS name")
        else:
            certificates[name] = clean
    return CertsConfig(
        directory_url=url,
        account_key=key or Path(),
        store=_absolute(reader, raw, "store", path, str(DEFAULT_STORE)) or DEFAULT_STORE,
        certificates=certificates,
        contact=reader.string(raw, "contact", path) if "contact" in raw else None,
        ca_bundle=bundle,
        attempts=reader.integer(raw, "attempts", path, 3, 1, 20),
        retry_wait=reader.number(raw, "retry_wait", path, 60.0, 0.0, 3600.0),
    )


def _absolute(reader: Reader, raw: Table, key: str, path: str, default: str | None) -> Path | None:
    text = reader.string(raw, key, path, default=default)
    if not text:
        return None
    if not text.startswith("/"):
        reader.problem(join(path, key), f"{text} must be an absolute path")
        return None
    return Path(text)
