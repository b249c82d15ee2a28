"""Loading mxctl.toml: the [dns] section, every problem at once with its path, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.config import Secret, load_config, parse_config, resolve_secret
from orchestrator.dns.cloudflare.settings import CloudflareSettings
from orchestrator.dns.rfc2136 import Rfc2136Settings
from orchestrator.errors import ConfigError

from .conftest import ENVIRON, OWNED

GOOD = f"""
[dns]
provider = "rfc2136"
zones = ["example.test", "Example.ORG."]
ttl = 120

[dns.rfc2136]
server = "10.254.77.11"
key_name = "mxctl-lab"
key_secret = "env:MXCTL_TEST_TSIG"
{OWNED}
[dns.verify]
nameservers = ["10.254.77.11", "10.254.77.12:5353"]
deadline = 30
"""


def test_good_config_loads_typed_values() -> None:
    dns = parse_config(GOOD, environ=ENVIRON).dns
    assert dns.zones == ("example.test.", "example.org.")
    assert isinstance(dns.provider, Rfc2136Settings)
    assert dns.provider.port == 53 and dns.provider.key_algorithm == "hmac-sha256"
    assert dns.provider.key_name == "mxctl-lab."
    assert dns.provider.key_secret.reveal() == ENVIRON["MXCTL_TEST_TSIG"]
    assert [(r.name, r.rtype, r.ttl) for r in dns.records][:3] == [
        ("example.test.", "MX", 120),
        ("example.org.", "MX", 120),
        ("mail.example.test.", "A", 60),  # client names: dns.client_ttl, short by default
    ]
    assert dns.mail_hosts["mx2.example.test."] == ("192.0.2.22", "2001:db8::22")
    assert [str(n) for n in dns.verify.nameservers] == ["10.254.77.11:53", "10.254.77.12:5353"]
    assert dns.verify.deadline == 30.0
    assert dns.owns("mail.example.test.", "AAAA") and not dns.owns("mail.example.test.", "MX")
    assert dns.zone_of("mail.example.test.") == "example.test."


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    bad = """
[dns]
provider = "rfc2136"
zones = ["example.test"]
colour = "blue"

[dns.rfc2136]
server = "ns1.example.test"
key_name = "k"
key_algorithm = "md5"
key_secret = "plain-text-secret"

[[dns.records]]
name = "example.test"
type = "MX"

[[dns.records]]
name = "mail.example.test"
type = "CNAME"

[[dns.records]]
name = "mail.other.test"
type = "A"
ttl = 5
priority = 3

[dns.mail_hosts]
"mx1.example.test" = ["not-an-ip"]

[dns.verify]
nameservers = ["ns1"]

[colours]
interval = 3
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, Path("mxctl.toml"), environ={})
    problems = [p.removeprefix("mxctl.toml: ") for p in caught.value.problems]
    expected = [
        "dns.colour: unknown setting",
        "dns.rfc2136.server: must be an IP address",
        "dns.rfc2136.key_algorithm: must be one of hmac-sha256",
        "dns.rfc2136.key_secret: must be a secret reference, `env:NAME` or `file:",
        "dns.records[1].type: must be one of MX, A, AAAA",
        "dns.records[2].name: mail.other.test. is in none of the zones example.test.",
        "dns.records[2].ttl: must be between 30 and 86400",
        "dns.records[2].priority: only MX records have a priority",
        "dns.mail_hosts.\"mx1.example.test\"[0]: 'not-an-ip' is not an IP address",
        "dns.verify.nameservers[0]: 'ns1' is not ADDRESS[:PORT]",
        "colours: unknown section (known: api, certs, cluster, dns, hooks, maintenance, notify, "
        "pair, policy, probes, ssh, witnesses)",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected)


def test_provider_sections_must_match_the_kind() -> None:
    text = GOOD.replace('provider = "rfc2136"', 'provider = "cloudflare"')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ=ENVIRON)
    assert any("dns.cloudflare: missing table" in p for p in caught.value.problems)
    assert any("dns.rfc2136: settings for rfc2136" in p for p in caught.value.problems)


def test_cloudflare_settings() -> None:
    text = GOOD.replace('provider = "rfc2136"', 'provider = "cloudflare"').replace(
        "[dns.rfc2136]\n", '[dns.cloudflare]\napi_token = "env:MXCTL_TEST_CF"\n[dns.unused]\n'
    )
    text = text.replace("[dns.unused]\n", "").replace('server = "10.254.77.11"\n', "")
    text = text.replace('key_name = "mxctl-lab"\nkey_secret = "env:MXCTL_TEST_TSIG"\n', "")
    dns = parse_config(text, environ=ENVIRON).dns
    assert isinstance(dns.provider, CloudflareSettings)
    assert dns.provider.base_url is None
    assert repr(dns.provider.api_token) == "***"
    assert "cf-test-token" not in repr(dns)


def test_missing_file_and_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MXCTL_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml not found: pass --config PATH"):
        load_config()
    (tmp_path / "bad.toml").write_text("[dns\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_a_file_not_in_utf8_names_the_file_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[dns]\nprovider = "rfc2136"\n# contr\u00f4leur\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: not UTF-8: byte 0xf4 at offset 34 (line 3); save the file as UTF-8"
    )


def test_secret_from_file_must_be_0600(tmp_path: Path) -> None:
    path = tmp_path / "tsig.key"
    path.write_text("c2VjcmV0\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"mode 0644.*chmod 600"):
        resolve_secret(f"file:{path}", "dns.rfc2136.key_secret")
    os.chmod(path, 0o600)
    secret = resolve_secret(f"file:{path}", "dns.rfc2136.key_secret")
    assert secret.reveal() == "c2VjcmV0"
    assert str(secret) == "***" and repr(secret) == "***"
    assert secret.reference == f"file:{path}"
    assert f"{[secret]}" == "[***]"


def test_secret_reference_errors_name_the_field(tmp_path: Path) -> None:
    cases = {
        "env:ABSENT": "x.y: environment variable ABSENT is not set",
        f"file:{tmp_path}/missing": "does not exist",
        "file:relative/path": "must be an absolute path",
        "vault:thing": "must be a secret reference",
    }
    for reference, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            resolve_secret(reference, "x.y", environ={})
    assert resolve_secret("env:S", "x", {"S": " v "}) == Secret("v")
