"""Which Debian mirror to build the lab from: the one this machine's apt already uses.

Never a hard-coded host: the machine's apt configuration is the source of truth, and
`mxctl lab up --mirror URL` overrides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import LabError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class Mirrors:
    main: str  # serves every Debian suite (SUITE, SUITE-updates)
    security: str | None  # serves SUITE-security, when apt knows one


@dataclass(frozen=True)
class _Source:
    uri: str
    suites: tuple[str, ...]


def _deb822_sources(text: str) -> list[_Source]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(_Source(uri, tuple(fields.get("suites", "").split())))
    return sources


def _one_line_sources(text: str) -> list[_Source]:
    sources = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            sources.append(_Source(words[1], (words[2],)))
    return sources


def read_apt_sources(apt_dir: Path = APT_DIR) -> list[_Source]:
    sources: list[_Source] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        sources += _deb822_sources(path.read_text())
    candidates = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in candidates:
        if path.is_file():
            sources += _one_line_sources(path.read_text())
    return sources


def _is_security(source: _Source) -> bool:
    return any(suite.endswith("-security") for suite in source.suites)


_DEBIAN_SUITES = ("bookworm", "trixie", "forky", "stable", "oldstable", "testing")


def _is_debian(suite: str) -> bool:
    """A main Debian suite (not -updates/-backports/-security, which a mirror may lack)."""
    return suite in _DEBIAN_SUITES


def find_mirrors(override: str | None = None, apt_dir: Path = APT_DIR) -> Mirrors:
    """The Debian mirror (and its security archive) from apt's configuration.

    A Debian mirror serves every suite, so the one this machine uses for its own release
    also serves the lab's (bookworm or trixie): its URI is what counts, not its suite.
    """
    sources = read_apt_sources(apt_dir)
    security = next((s.uri for s in sources if _is_security(s)), None)
    if override:
        return Mirrors(
            main=override.rstrip("/"), security=security.rstrip("/") if security else None
        )
    debian = [s for s in sources if not _is_security(s) and any(_is_debian(x) for x in s.suites)]
    main = debian[0].uri if debian else None
    if main is None:
        raise LabError(
            f"no Debian mirror in {apt_dir}/sources.list or sources.list.d: "
            "pass `mxctl lab up --mirror URL`"
        )
    return Mirrors(main=main.rstrip("/"), security=security)
