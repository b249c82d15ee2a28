"""Which configuration a mail host gets, from its /etc/os-release (pyinfra's fact)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.deploy.release import mail_release
from orchestrator.errors import ConfigError


def fact(name: str, major: int | None, codename: str) -> dict[str, Any]:
    meta = {"ID": name.lower(), "VERSION_CODENAME": codename} if codename else {}
    return {"name": name, "major": major, "minor": None, "release_meta": meta}


@pytest.mark.parametrize(
    ("distribution", "dovecot", "postfix_unit"),
    [
        (fact("Debian", 12, "bookworm"), "2.3", "postfix@-"),
        (fact("Debian", 13, "trixie"), "2.4", "postfix"),
        (fact("Debian", 13, ""), "2.4", "postfix"),  # no codename: the major decides
        (fact("Debian", None, "trixie"), "2.4", "postfix"),
    ],
)
def test_release_picks_the_dovecot_language(
    distribution: dict[str, Any], dovecot: str, postfix_unit: str
) -> None:
    release = mail_release("mx1", distribution)
    assert (release.dovecot, release.postfix_unit) == (dovecot, postfix_unit)


@pytest.mark.parametrize(
    ("distribution", "words"),
    [
        (fact("Debian", 11, "bullseye"), "mail[mx1]: Debian 11 (bullseye) is not supported"),
        (fact("Ubuntu", 24, "noble"), "mail[mx1]: runs Ubuntu, not Debian"),
        ({}, "runs unknown, not Debian"),
    ],
)
def test_unsupported_hosts_are_refused_naming_host_and_fix(
    distribution: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        mail_release("mx1", distribution)
    assert words in caught.value.problems[0]
    assert "Debian 12 (bookworm), Debian 13 (trixie)" in caught.value.problems[0]
