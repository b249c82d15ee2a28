"""The controller's sections of mxctl.toml: defaults, and every problem named at once."""

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
key_name = "k"
key_secret = "env:TSIG"
[[dns.records]]
name = "example.test"
type = "MX"
[dns.mail_hosts]
"mx1.example.test" = ["10.0.0.1"]
"mx2.example.test" = ["10.0.0.2"]
"""


def test_a_good_controller_config_loads_with_defaults(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    key.chmod(0o600)
    known = tmp_path / "known_hosts"
    known.write_text("")
    text = (
        DNS
        + f"""
[pair]
primary = "mx1.example.test"
standby = "mx2.example.test"
[ssh]
key_file = "{key}"
known_hosts = "{known}"
[witnesses.sender]
url = "https://witness.example.test:8427/report"
token = "env:WITNESS_TOKEN"
[hooks]
pre_failover = [["/bin/true"]]
"""
    )
    config = parse_config(text, environ={"TSIG": "c2VjcmV0", "WITNESS_TOKEN": "t0ken"})
    assert config.pair.primary == "mx1.example.test"
    assert config.policy.failure_threshold == 3 and config.policy.interval == 5.0
    assert [w.name for w in config.witnesses] == ["sender"]
    assert repr(config.witnesses[0].token) == "***"
    assert config.hooks.pre_failover == (("/bin/true",),)
    assert config.api.token is None  # no token: mutating endpoints are off
    assert config.api.listen == "127.0.0.1" and not config.api.tls  # loopback, plain HTTP
    assert config.witnesses[0].ca_file == "" and not config.witnesses[0].allow_insecure_http


def test_every_controller_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    loose = tmp_path / "id"
    loose.write_text("k")
    loose.chmod(0o644)
    text = (
        DNS
        + f"""
[pair]
primary = "mx1.example.test"
standby = "mx9.example.test"
[ssh]
key_file = "{loose}"
known_hosts = "relative/known_hosts"
[policy]
interval = 0
failure_threshold = "three"
[witnesses.sender]
url = "ftp://x"
token = "hunter2"
[hooks]
pre_failover = "/bin/true"
[api]
listen = "localhost"
"""
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={"TSIG": "c2VjcmV0"})
    problems = caught.value.problems
    expected = [
        "pair.standby: mx9.example.test is not in dns.mail_hosts",
        "ssh.key_file: " + str(loose) + " must not be readable by group or others",
        "ssh.known_hosts: relative/known_hosts must be an absolute path",
        "policy.interval: must be between 0.2 and 3600",
        "policy.failure_threshold: must be an integer",
        "witnesses.sender.url: must be an http(s) URL",
        "witnesses.sender.token: must be a secret reference",
        "hooks.pre_failover: must be a list of argv lists",
        "api.listen: 'localhost' is not an IP address",
    ]
    for want in expected:
        assert any(want in p for p in problems), (want, problems)
    assert len(problems) == len(expected)


def test_a_command_validates_only_the_sections_it_uses(tmp_path: Path) -> None:
    """`mxctl dns show` on a lab that is up but not deployed: the probe password file the
    first deploy creates does not exist yet, and DNS needs none of it."""
    probes = f'[probes]\nprobe_user = "probe@example.test"\nprobe_password = "file:{tmp_path}/x"\n'
    text = DNS + "\n" + probes
    with pytest.raises(ConfigError) as everything:
        parse_config(text, environ={"TSIG": "c2VjcmV0"})
    assert "probes.probe_password" in str(everything.value)
    config = parse_config(text, environ={"TSIG": "c2VjcmV0"}, required=("dns",), only=("dns",))
    assert config.dns.zones == ("example.test.",)
    assert "probes" not in config.sections
    # A section the command skips is still a known name: a typo is never ignored.
    with pytest.raises(ConfigError, match="dnss: unknown section"):
        parse_config(text + "[dnss]\n", environ={"TSIG": "c2VjcmV0"}, only=("dns",))
