"""Secrets by reference: `env:NAME` or `file:/path` (0600), resolved once, printed as `***`.

The secret's value only leaves a `Secret` through `reveal()`, at the call that needs it
(a TSIG keyring, an HTTP header). Its repr and str never show it, so logging a config or
an exception that carries one cannot leak it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import ConfigError

REFERENCE_FORMS = "`env:NAME` or `file:/absolute/path`"


class Secret:
    """A resolved secret; `reveal()` is the only way to read it."""

    __slots__ = ("_reference", "_value")

    def __init__(self, value: str, reference: str = "") -> None:
        self._value = value
        self._reference = reference

    def reveal(self) -> str:
        return self._value

    @property
    def reference(self) -> str:
        """Where the secret came from (`env:NAME`, `file:/path`): safe to show."""
        return self._reference

    def __repr__(self) -> str:
        return "***"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(reference: str, field: str, environ: Mapping[str, str] | None = None) -> Secret:
    """Read the secret a reference points at; ConfigError naming `field` otherwise."""
    env = os.environ if environ is None else environ
    kind, sep, target = reference.partition(":")
    if not sep or not target or kind not in ("env", "file"):
        raise ConfigError(
            f"{field}: must be a secret reference, {REFERENCE_FORMS}; secrets are never "
            "written into the config itself"
        )
    if kind == "env":
        value = env.get(target)
        if value is None or not value.strip():
            raise ConfigError(f"{field}: environment variable {target} is not set or empty")
        return Secret(value.strip(), reference)
    return Secret(_read_secret_file(Path(target), field), reference)


def _read_secret_file(path: Path, field: str) -> str:
    if not path.is_absolute():
        raise ConfigError(f"{field}: file reference {path} must be an absolute path")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{field}: secret file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read secret file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{field}: secret file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{field}: secret file {path} has mode {mode:04o}; it must not be readable by "
            f"group or others: run `chmod 600 {path}`"
        )
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{field}: cannot read secret file {path}: {exc}") from None
    if not value:
        raise ConfigError(f"{field}: secret file {path} is empty")
    return value
