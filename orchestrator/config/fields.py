"""Typed reads from a parsed TOML table that collect every problem with its path.

Each getter returns a usable placeholder when the value is wrong, so one pass over the
whole file finds every problem; the loader raises one ConfigError listing them all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from orchestrator.config.secrets import Secret, resolve_secret
from orchestrator.errors import ConfigError

Table = Mapping[str, Any]


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Collects problems as `path: message` lines while values are read."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.problems: list[str] = []
        self._environ = environ

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def reject_unknown(self, table: Table, known: Collection[str], path: str) -> None:
        for key in table:
            if key not in known:
                allowed = ", ".join(sorted(known))
                self.problem(join(path, key), f"unknown setting (known here: {allowed})")

    def table(self, table: Table, key: str, path: str, required: bool = True) -> Table:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(join(path, key), "missing table")
            return {}
        if not isinstance(value, dict):
            self.problem(join(path, key), "must be a table")
            return {}
        return value

    def tables(self, table: Table, key: str, path: str) -> list[Table]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(join(path, key), f"must be an array of tables ([[{join(path, key)}]])")
            return []
        return value

    def string(
        self,
        table: Table,
        key: str,
        path: str,
        default: str | None = None,
        choices: Collection[str] | None = None,
    ) -> str:
        value = table.get(key, default)
        where = join(path, key)
        if value is None:
            self.problem(where, "required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be a non-empty string")
            return ""
        if choices is not None and value not in choices:
            self.problem(where, f"must be one of {', '.join(choices)}")
            return ""
        return value.strip()

    def integer(
        self, table: Table, key: str, path: str, default: int | None, low: int, high: int
    ) -> int:
        value = table.get(key, default)
        where = join(path, key)
        if value is None:
            self.problem(where, "required")
            return low
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, "must be an integer")
            return low
        if not low <= value <= high:
            self.problem(where, f"must be between {low} and {high}")
            return low
        return value

    def number(
        self, table: Table, key: str, path: str, default: float, low: float, high: float
    ) -> float:
        value = table.get(key, default)
        where = join(path, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(where, "must be a number")
            return default
        if not low <= value <= high:
            self.problem(where, f"must be between {low:g} and {high:g}")
            return default
        return float(value)

    def boolean(self, table: Table, key: str, path: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problem(join(path, key), "must be true or false")
            return default
        return value

    def strings(self, table: Table, key: str, path: str, required: bool = False) -> list[str]:
        value = table.get(key)
        where = join(path, key)
        if value is None:
            if required:
                self.problem(where, "required (a list of strings)")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(where, "must be a list of non-empty strings")
            return []
        return list(value)

    def api_url(
        self, table: Table, key: str, path: str, required: bool, allow_insecure_http: bool
    ) -> str | None:
        """An http(s) URL that credentials are sent to: `https://`, or plain `http://` only
        when the table says `allow_insecure_http = true` (a loopback test server)."""
        if key not in table and not required:
            return None
        url = self.string(table, key, path)
        where = join(path, key)
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            self.problem(where, "must be an http(s) URL")
            return None
        if url.startswith("http://") and not allow_insecure_http:
            self.problem(
                where,
                f"{url} is plain http:// and the credential would cross the network "
                f"unencrypted: use https://, or set {join(path, 'allow_insecure_http')} = true "
                "for a server on loopback",
            )
            return None
        return url.rstrip("/")

    def secret(self, table: Table, key: str, path: str) -> Secret:
        reference = self.string(table, key, path)
        if not reference:
            return Secret("", "")
        return self.resolve(reference, join(path, key))

    def resolve(self, reference: str, path: str) -> Secret:
        """The secret behind an `env:`/`file:` reference; a problem (and an empty secret)
        when it cannot be read."""
        try:
            return resolve_secret(reference, path, self._environ)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return Secret("", reference)
