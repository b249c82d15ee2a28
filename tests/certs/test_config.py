"""`[certs]`: every problem reported at once, with its field path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.errors import ConfigError

DNS = """
[dns]
provider = "rfc2136"
zones = ["example.test"]
[dns.rfc2136]
server = "127.0.0.1"
key_name = "k."
key_secret = "env:TSIG"
[[dns.records]]
name = "example.test"
type = "MX"
priority = 10
[dns.mail_hosts]
"mx1.example.test" = ["192.0.2.21"]
"""
GOOD = """
[certs]
directory_url = "https://acme.example/directory"
account_key = "/etc/mxctl/acme/account.key"
[certs.certificates]
"mx1.example.test" = ["mx1.example.test", "Mail.Example.Test."]
"""


def test_a_good_section_with_defaults() -> None:
    certs = parse_config(DNS + GOOD, environ={"TSIG": "c2VjcmV0"}).certs
    assert certs.certificates == {"mx1.example.test": ("mx1.example.test", "mail.example.test")}
    assert certs.store == Path("/etc/mxctl/tls") and certs.attempts == 3
    assert certs.account_key == Path("/etc/mxctl/acme/account.key") and certs.ca_bundle is None


def test_every_problem_at_once() -> None:
    bad = """
[certs]
directory_url = "http://acme.example/directory"
account_key = "account.key"
attempts = 0
colour = "blue"
[certs.certificates]
"../evil" = ["mx1.example.test"]
"web" = ["www.elsewhere.example"]
"empty" = []
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(DNS + bad, environ={"TSIG": "c2VjcmV0"})
    text = str(caught.value)
    for expected in (
        "certs.directory_url: must be an https:// URL",
        "certs.account_key: account.key must be an absolute path",
        "certs.attempts: must be between 1 and 20",
        "certs.colour",
        "certs.certificates.../evil: must be a plain name",
        "certs.certificates.web: www.elsewhere.example is in none of dns.zones",
        "certs.certificates.empty",
    ):
        assert expected in text, (expected, text)
