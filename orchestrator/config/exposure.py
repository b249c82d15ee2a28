"""Where a listener may bind and where a token may travel: the rules, as pure functions.

A service bound to loopback is reachable only from its own host; bound anywhere else it
must speak TLS (the API's `/status` and `/metrics` are open, and its token must not cross a
network in clear). A bearer token sent to a plain `http://` URL off the host is readable by
anyone on the path. Either is allowed only when the operator says so explicitly with
`allow_insecure_http = true` (e.g. a private lab bridge).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name, as in a URL or a listen setting) is loopback."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_problem(table: str, listen: str, tls: bool, allow_insecure_http: bool) -> str | None:
    """Why a plain-HTTP service configured in `table` must not bind `listen`, or None."""
    if tls or allow_insecure_http or is_loopback(listen):
        return None
    return (
        f"{listen!r} is not a loopback address and there is no TLS: listen on 127.0.0.1, "
        f"or serve HTTPS (set {table}.tls_cert and {table}.tls_key), or set "
        f"{table}.allow_insecure_http = true to accept plain HTTP on the network"
    )


def url_problem(url: str, credential: str, table: str, allow_insecure_http: bool) -> str | None:
    """Why `url` must not receive `credential` (a token, or a password in the URL), or None."""
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_insecure_http or is_loopback(parts.hostname or ""):
        return None
    return (
        f"plain http:// to {parts.hostname} would send {credential} in clear: use https://, "
        f"or set {table}.allow_insecure_http = true"
    )
