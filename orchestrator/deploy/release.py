"""Which Debian release a mail host runs, and so which Dovecot configuration it gets.

The deploy reads the host's /etc/os-release (pyinfra's LinuxDistribution fact) and picks
the matching configuration language: Debian 12 ships Dovecot 2.3 (replicated by Dovecot's
own replicator), Debian 13 ships Dovecot 2.4 (no replicator: replicated by mxctl-dsync).
Pure: the fact in, a `MailRelease` or an error naming the host and the fix out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError


@dataclass(frozen=True)
class MailRelease:
    codename: str  # bookworm | trixie
    debian: int  # 12 | 13
    dovecot: str  # "2.3" | "2.4": the configuration language and replication to use
    postfix: str  # the Postfix series the release ships ("3.7" | "3.10")
    # The systemd unit that runs and reloads Postfix's main instance: on Debian 12
    # postfix.service is a stub and postfix@- does the work; Debian 13 dropped that split.
    postfix_unit: str

    @property
    def dovecot24(self) -> bool:
        return self.dovecot == "2.4"


SUPPORTED: dict[str, MailRelease] = {
    "bookworm": MailRelease("bookworm", 12, "2.3", "3.7", "postfix@-"),
    "trixie": MailRelease("trixie", 13, "2.4", "3.10", "postfix"),
}
_BY_MAJOR = {release.debian: release for release in SUPPORTED.values()}


def mail_release(host: str, distribution: Mapping[str, Any]) -> MailRelease:
    """The release of `host` from its LinuxDistribution fact; ConfigError when unsupported."""
    name = str(distribution.get("name") or "unknown")
    meta = distribution.get("release_meta") or {}
    codename = str(meta.get("VERSION_CODENAME") or "").lower()
    major = distribution.get("major")
    supported = ", ".join(f"Debian {r.debian} ({r.codename})" for r in SUPPORTED.values())
    if name != "Debian" and str(meta.get("ID", "")).lower() != "debian":
        raise ConfigError(
            [f"mail[{host}]: runs {name}, not Debian: mail hosts must run {supported}"]
        )
    if codename in SUPPORTED:
        return SUPPORTED[codename]
    if isinstance(major, int) and major in _BY_MAJOR:
        return _BY_MAJOR[major]
    seen = f"Debian {major if major is not None else '?'} ({codename or 'no codename'})"
    raise ConfigError(
        [f"mail[{host}]: {seen} is not supported: install {supported} on the mail hosts"]
    )
