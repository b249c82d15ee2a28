"""Fixtures for the DNS tests: real BIND9 and PowerDNS on loopback, the Cloudflare stand-in.

`env` is parametrised over every provider setup, so a test that takes it is a contract
test run against each: RFC 2136 to BIND, RFC 2136 to PowerDNS, the PowerDNS HTTP API,
Cloudflare (real SDK against the stand-in server in cloudflare_standin.py, the one
sanctioned stand-in), and Route 53 (real boto3 against moto's server, route53_moto.py).
Each test starts from the baseline zones: MX -> mx1, mail A -> mx1.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.query
import dns.tsig
import dns.update
import pytest

from orchestrator.cli import dns_cmd
from orchestrator.clock import FakeClock
from orchestrator.config import parse_config
from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.factory import make_provider
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.records import RRset
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import MxctlError

from . import route53_moto
from .cloudflare_standin import CloudflareStandIn
from .servers import MX1, PDNS_API_KEY, TSIG_NAME, TSIG_SECRET, ZONES, BindPair, PowerDns, zone_text

CF_TOKEN = "cf-test-token"
ENVIRON = {
    "MXCTL_TEST_TSIG": TSIG_SECRET,
    "MXCTL_TEST_BAD_TSIG": base64.b64encode(b"not-the-secret-0123456789abcdef!").decode(),
    "MXCTL_TEST_CF": CF_TOKEN,
    "MXCTL_TEST_PDNS_KEY": PDNS_API_KEY,
    "MXCTL_TEST_BAD_KEY": "not-the-credential",
    "MXCTL_TEST_AWS_KEY": "mxctl-test-key",
    "MXCTL_TEST_AWS_SECRET": "mxctl-test-secret",
}

OWNED = """
[[dns.records]]
name = "example.test"
type = "MX"
priority = 10

[[dns.records]]
name = "example.org"
type = "MX"
priority = 10

[[dns.records]]
name = "mail.example.test"
type = "A"

[[dns.records]]
name = "mail.example.test"
type = "AAAA"

[dns.mail_hosts]
"mx1.example.test" = ["192.0.2.21"]
"mx2.example.test" = ["192.0.2.22", "2001:db8::22"]
"mx9.example.test" = ["192.0.2.29"]
"""


def dns_toml(provider: str, block: str, nameservers: list[str], extra: str = "") -> str:
    servers = ", ".join(f'"{s}"' for s in nameservers)
    return (
        f'[dns]\nprovider = "{provider}"\nzones = ["example.test", "example.org"]\nttl = 300\n'
        f"{OWNED}\n[dns.{provider}]\n{block}\n"
        f"[dns.verify]\nnameservers = [{servers}]\ndeadline = 20\ninterval = 0.1\n{extra}"
    )


def load_dns(text: str, environ: dict[str, str] | None = None) -> DnsConfig:
    return parse_config(text, Path("test.toml"), environ or ENVIRON).dns


BASELINE = (
    RRset("example.test.", "MX", 300, ("10 mx1.example.test.",)),
    RRset("example.org.", "MX", 300, ("10 mx1.example.test.",)),
    RRset("mail.example.test.", "A", 300, (MX1,)),
    RRset("mail.example.test.", "AAAA"),
    RRset("scratch.example.test.", "MX"),
    RRset("scratch.example.test.", "A"),
)


@dataclass
class ProviderEnv:
    """One provider setup: its config, a provider, and a side channel for 'other writers'."""

    name: str
    config_text: str
    force: Callable[[RRset], None]  # set an RRset behind the provider's back
    nameservers: list[str]
    bad_credential: tuple[str, str]  # (config text with a wrong credential, what the error names)
    clock: FakeClock = field(default_factory=FakeClock)
    standin: CloudflareStandIn | None = None
    providers: list[BaseProvider] = field(default_factory=list)

    @property
    def config(self) -> DnsConfig:
        return load_dns(self.config_text)

    def provider(self, config: DnsConfig | None = None, **policy: float) -> BaseProvider:
        # Fake clock for retry sleeps, so Retry-After and backoff cost no real time.
        retry = RetryPolicy(clock=self.clock, **policy)  # type: ignore[arg-type]
        made = make_provider(config or self.config, self.clock, retry)
        self.providers.append(made)
        return made


def rfc2136_force(address: str, port: int) -> Callable[[RRset], None]:
    key = dns.tsig.Key(TSIG_NAME, TSIG_SECRET, "hmac-sha256")

    def force(rrset: RRset) -> None:
        zone = next(z for z in ZONES if rrset.name.endswith(z))
        update = dns.update.UpdateMessage(zone, keyring=key)
        if rrset.exists:
            update.replace(rrset.name, rrset.ttl, rrset.rtype, *rrset.rdatas)
        else:
            update.delete(rrset.name, rrset.rtype)
        response = dns.query.tcp(update, address, port=port, timeout=5)
        assert response.rcode() == 0, response

    return force


def pdns_force(pdns: PowerDns) -> Callable[[RRset], None]:
    def force(rrset: RRset) -> None:
        zone = next(z for z in ZONES if rrset.name.endswith(z))
        body: dict[str, object] = {"name": rrset.name, "type": rrset.rtype}
        if rrset.exists:
            body |= {
                "changetype": "REPLACE",
                "ttl": rrset.ttl,
                "records": [{"content": c, "disabled": False} for c in rrset.rdatas],
            }
        else:
            body["changetype"] = "DELETE"
        pdns.api("PATCH", f"/zones/{zone}", {"rrsets": [body]})

    return force


def standin_force(standin: CloudflareStandIn) -> Callable[[RRset], None]:
    def force(rrset: RRset) -> None:
        zone = standin.zone(next(z for z in ZONES if rrset.name.endswith(z)).rstrip("."))
        standin.remove_records(zone.name, rrset.name, rrset.rtype)
        for rdata in rrset.rdatas:
            body: dict[str, object] = {"name": rrset.name, "type": rrset.rtype, "ttl": rrset.ttl}
            if rrset.rtype == "MX":
                priority, host = rdata.split()
                body |= {"priority": int(priority), "content": host.rstrip(".")}
            else:
                body["content"] = rdata
            standin.add_record(zone.name, body)

    return force


def make_standin() -> CloudflareStandIn:
    standin = CloudflareStandIn({CF_TOKEN}).start()
    for zone in ZONES:
        standin.add_zone(zone.rstrip("."), ["ns1.example.test", "ns2.example.test"])
        for line in zone_text(zone, ("127.0.0.1", "127.0.0.1")).splitlines():
            if line.startswith("$") or " SOA " in line or " NS " in line:
                continue
            owner, rtype, *rest = line.split()
            name = zone if owner == "@" else f"{owner}.{zone}"
            body: dict[str, object] = {"name": name.rstrip("."), "type": rtype, "ttl": 300}
            if rtype == "MX":
                body |= {"priority": int(rest[0]), "content": _absolute(rest[1], zone)}
            else:
                body["content"] = rest[0]
            standin.add_record(zone.rstrip("."), body)
    return standin


def _absolute(host: str, zone: str) -> str:
    return host.rstrip(".") if host.endswith(".") else f"{host}.{zone}".rstrip(".")


@pytest.fixture(scope="session")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindPair]:
    pair = BindPair(tmp_path_factory.mktemp("bind"))
    try:
        yield pair.start()
    finally:
        pair.stop()


@pytest.fixture(scope="session")
def pdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDns]:
    server = PowerDns(tmp_path_factory.mktemp("pdns"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_route53() -> Iterator[route53_moto.MotoRoute53]:
    moto = route53_moto.start_moto()
    try:
        yield moto
    finally:
        moto.stop()


def bind_env(bind: BindPair) -> ProviderEnv:
    force = rfc2136_force(bind.address, bind.port)
    for rrset in BASELINE:
        force(rrset)
    block = (
        f'server = "{bind.address}"\nport = {bind.port}\nkey_name = "{TSIG_NAME}"\n'
        'key_algorithm = "hmac-sha256"\nkey_secret = "env:MXCTL_TEST_TSIG"\ntimeout = 3\n'
    )
    text = dns_toml("rfc2136", block, bind.endpoints)
    bad = text.replace('key_name = "mxctl-test."', 'key_name = "wrong-key."')
    return ProviderEnv("rfc2136-bind", text, force, bind.endpoints, (bad, "wrong-key."))


def pdns_rfc2136_env(pdns: PowerDns) -> ProviderEnv:
    force = pdns_force(pdns)
    for rrset in BASELINE:
        force(rrset)
    block = (
        f'server = "{pdns.address}"\nport = {pdns.port}\nkey_name = "{TSIG_NAME}"\n'
        'key_secret = "env:MXCTL_TEST_TSIG"\ntimeout = 3\n'
    )
    endpoint = [f"{pdns.address}:{pdns.port}"]
    text = dns_toml("rfc2136", block, endpoint)
    bad_environ_text = text.replace("env:MXCTL_TEST_TSIG", "env:MXCTL_TEST_BAD_TSIG")
    return ProviderEnv("rfc2136-pdns", text, force, endpoint, (bad_environ_text, "mxctl-test."))


def pdns_api_env(pdns: PowerDns) -> ProviderEnv:
    force = pdns_force(pdns)
    for rrset in BASELINE:
        force(rrset)
    block = (
        f'api_url = "{pdns.api_url}"\napi_key = "env:MXCTL_TEST_PDNS_KEY"\ntimeout = 3\n'
        "allow_insecure_http = true  # the test server listens on loopback\n"
    )
    endpoint = [f"{pdns.address}:{pdns.port}"]
    text = dns_toml("powerdns", block, endpoint)
    bad = text.replace("env:MXCTL_TEST_PDNS_KEY", "env:MXCTL_TEST_BAD_KEY")
    return ProviderEnv("powerdns", text, force, endpoint, (bad, "env:MXCTL_TEST_BAD_KEY"))


def cloudflare_env(standin: CloudflareStandIn) -> ProviderEnv:
    block = (
        f'api_token = "env:MXCTL_TEST_CF"\nbase_url = "{standin.base_url}"\ntimeout = 2\n'
        "allow_insecure_http = true  # the stand-in listens on loopback\n"
    )
    text = dns_toml("cloudflare", block, [])
    bad = text.replace("env:MXCTL_TEST_CF", "env:MXCTL_TEST_BAD_KEY")
    return ProviderEnv(
        "cloudflare",
        text,
        standin_force(standin),
        [],
        (bad, "env:MXCTL_TEST_BAD_KEY"),
        standin=standin,
    )


def route53_env(moto: route53_moto.MotoRoute53) -> ProviderEnv:
    route53_moto.reset_zones(moto)
    block = (
        'access_key_id = "env:MXCTL_TEST_AWS_KEY"\n'
        'secret_access_key = "env:MXCTL_TEST_AWS_SECRET"\n'
        f'endpoint_url = "{moto.url}"\n'
        "allow_insecure_http = true  # moto on loopback\ntimeout = 3\n"
    )
    text = dns_toml("route53", block, [])
    # moto takes any key, so the wrong credential is a profile no AWS config holds.
    bad = text.replace(
        'access_key_id = "env:MXCTL_TEST_AWS_KEY"\nsecret_access_key = "env:MXCTL_TEST_AWS_SECRET"',
        'profile = "mxctl-no-such-profile"',
    )

    def force(rrset: RRset) -> None:
        route53_moto.force(moto, rrset)

    return ProviderEnv("route53", text, force, [], (bad, "mxctl-no-such-profile"))


PROVIDERS = ["rfc2136-bind", "rfc2136-pdns", "powerdns", "cloudflare", "route53"]


@pytest.fixture(params=PROVIDERS)
def env(request: pytest.FixtureRequest) -> Iterator[ProviderEnv]:
    yield from _env(request, request.param)


@pytest.fixture
def bind_setup(request: pytest.FixtureRequest) -> Iterator[ProviderEnv]:
    yield from _env(request, "rfc2136-bind")


@pytest.fixture
def cf_setup(request: pytest.FixtureRequest) -> Iterator[ProviderEnv]:
    yield from _env(request, "cloudflare")


@pytest.fixture
def route53_setup(request: pytest.FixtureRequest) -> Iterator[ProviderEnv]:
    yield from _env(request, "route53")


@pytest.fixture
def pdns_setup(request: pytest.FixtureRequest) -> Iterator[ProviderEnv]:
    yield from _env(request, "powerdns")


def _env(request: pytest.FixtureRequest, name: str) -> Iterator[ProviderEnv]:
    standin = None
    if name == "rfc2136-bind":
        setup = bind_env(request.getfixturevalue("bind"))
    elif name == "rfc2136-pdns":
        setup = pdns_rfc2136_env(request.getfixturevalue("pdns"))
    elif name == "powerdns":
        setup = pdns_api_env(request.getfixturevalue("pdns"))
    elif name == "route53":
        setup = route53_env(request.getfixturevalue("moto_route53"))
    else:
        standin = make_standin()
        setup = cloudflare_env(standin)
    try:
        yield setup
    finally:
        for provider in setup.providers:
            provider.close()
        if standin is not None:
            standin.stop()


def run_mxctl(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse and dispatch like `mxctl` (orchestrator.cli.main) with only the dns commands."""
    parser = argparse.ArgumentParser(prog="mxctl")
    dns_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
    except MxctlError as exc:
        print(f"mxctl: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err
