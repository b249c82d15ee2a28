"""DNS provider set-ups on loopback, shared by the DNS tests and bench/dns.py.

Real BIND9 and PowerDNS (dnsservers.py), Cloudflare (the real SDK against cloudflare.py,
the project's ONE sanctioned stand-in) and Route 53 (real boto3 against moto's server,
route53_moto.py). Each set-up starts from the baseline zones: MX -> mx1, mail A -> mx1.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.query
import dns.tsig
import dns.update

from mxlab.standins import route53_moto
from mxlab.standins.cloudflare import CloudflareStandIn
from mxlab.standins.dnsservers import (
    MX1,
    PDNS_API_KEY,
    TSIG_NAME,
    TSIG_SECRET,
    ZONES,
    BindPair,
    PowerDns,
    zone_text,
)
from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.config import parse_config
from orchestrator.config.dns_section import DnsConfig
from orchestrator.dns.factory import make_provider
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.records import RRset
from orchestrator.dns.retry import RetryPolicy

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
        # The baseline zones serve every record at 300 s (client names included).
        "client_ttl = 300\n"
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
    clock: Clock = SYSTEM_CLOCK  # the tests put a FakeClock here: retries cost no time
    standin: CloudflareStandIn | None = None
    providers: list[BaseProvider] = field(default_factory=list)

    @property
    def config(self) -> DnsConfig:
        return load_dns(self.config_text)

    def provider(self, config: DnsConfig | None = None, **policy: float) -> BaseProvider:
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
