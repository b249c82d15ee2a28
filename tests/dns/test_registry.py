"""Providers plug in: one registry maps a kind to its class, each module parses its own
settings, and the config loader knows no provider kind (issue 10, part 3), plus the
per-provider checks made at load: plain http:// with a credential, TTL floors."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from orchestrator.config import parse_config
from orchestrator.config.fields import Reader, Table
from orchestrator.dns import registry
from orchestrator.dns.factory import make_provider
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.records import RRset
from orchestrator.errors import ConfigError

from .conftest import ENVIRON, dns_toml

ROOT = Path(__file__).resolve().parents[2]
CF_BLOCK = 'api_token = "env:MXCTL_TEST_CF"\n'
PDNS_BLOCK = 'api_url = "https://pdns.example.test:8081"\napi_key = "env:MXCTL_TEST_PDNS_KEY"\n'


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("m.toml"), ENVIRON)
    return [p.removeprefix("m.toml: ") for p in caught.value.problems]


def test_every_registered_kind_resolves_to_a_provider_that_parses_its_settings() -> None:
    assert set(registry.PROVIDERS) == {"rfc2136", "cloudflare", "powerdns", "route53"}
    for kind in registry.PROVIDERS:
        cls = registry.provider_class(kind)
        assert issubclass(cls, BaseProvider) and cls.kind == kind
        assert cls.parse_settings.__func__ is not BaseProvider.parse_settings.__func__  # type: ignore[attr-defined]


def test_config_imports_no_dns_internals() -> None:
    """orchestrator/config may use the registry and the record value helpers, nothing
    else of orchestrator.dns: no provider module, no settings class."""
    allowed = {"orchestrator.dns.registry", "orchestrator.dns.records"}
    for path in (ROOT / "orchestrator" / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "orchestrator.dns"
            ):
                assert node.module in allowed, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("orchestrator.dns"), path.name


def test_factory_names_no_provider() -> None:
    source = (ROOT / "orchestrator" / "dns" / "factory.py").read_text()
    assert "isinstance" not in source
    for kind in registry.PROVIDERS:
        assert kind not in source.lower().replace("kind", "")


# -- a provider added with one module and one registry line --------------------------------
@dataclass(frozen=True)
class MemorySettings(registry.ProviderSettings):
    label: str


class MemoryProvider(BaseProvider):
    """A provider that keeps RRsets in a dict: only here to show the plug-in seam."""

    kind: ClassVar[str] = "memory"

    def __init__(self, settings: MemorySettings, zones: tuple[str, ...], *rest: object) -> None:
        super().__init__(settings, zones)
        self.settings = settings
        self.data: dict[tuple[str, str], RRset] = {}

    @classmethod
    def parse_settings(cls, reader: Reader, table: Table, where: str) -> MemorySettings:
        reader.reject_unknown(table, {"label", "timeout"}, where)
        return MemorySettings(
            timeout=reader.number(table, "timeout", where, 1.0, 0.1, 5.0),
            label=reader.string(table, "label", where),
        )

    def _read(self, zone: str, name: str, rtype: str) -> RRset:
        return self.data.get((name, rtype), RRset(name, rtype))


def test_a_new_provider_is_one_class_and_one_registry_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.PROVIDERS, "memory", f"{__name__}:MemoryProvider")
    assert sys.modules[__name__].MemoryProvider is MemoryProvider
    config = parse_config(dns_toml("memory", 'label = "t"', []), environ=ENVIRON).dns
    assert config.provider == MemorySettings(timeout=1.0, label="t")
    provider = make_provider(config)
    assert isinstance(provider, MemoryProvider)
    assert not provider.read("example.test.", "MX").exists
    # Its own parser reports its own problems, with the field path, with everything else.
    bad = dns_toml("memory", 'colour = "red"', []).replace("ttl = 300", "ttl = 3")
    found = problems_of(bad)
    assert any(p.startswith("dns.memory.colour: unknown setting") for p in found), found
    assert any(p.startswith("dns.memory.label: required") for p in found), found
    assert any(p.startswith("dns.ttl: must be between 30") for p in found), found


# -- plain http:// with a credential --------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "block", "field"),
    [
        (
            "powerdns",
            'api_url = "http://pdns.example.test:8081"\napi_key = "env:MXCTL_TEST_PDNS_KEY"\n',
            "dns.powerdns.api_url",
        ),
        (
            "cloudflare",
            CF_BLOCK + 'base_url = "http://cf.example.test/client/v4"\n',
            "dns.cloudflare.base_url",
        ),
    ],
)
def test_plain_http_with_a_credential_is_refused_unless_allowed(
    kind: str, block: str, field: str
) -> None:
    found = problems_of(dns_toml(kind, block, []))
    assert len(found) == 1 and found[0].startswith(f"{field}: http://"), found
    assert f"dns.{kind}.allow_insecure_http = true" in found[0]
    allowed = parse_config(
        dns_toml(kind, block + "allow_insecure_http = true\n", []), environ=ENVIRON
    ).dns
    assert allowed.provider_kind == kind
    https = parse_config(dns_toml(kind, block.replace("http://", "https://"), []), environ=ENVIRON)
    assert https.dns.provider_kind == kind


# -- TTL floors -------------------------------------------------------------------------
def test_cloudflare_ttl_floor_is_checked_at_load_with_each_field_named() -> None:
    text = dns_toml("cloudflare", CF_BLOCK, []).replace('type = "A"\n', 'type = "A"\nttl = 30\n', 1)
    text += "\n[maintenance]\nlow_ttl = 30\n"
    found = problems_of(text)
    assert [p.split(":")[0] for p in found] == ["dns.records[2].ttl", "maintenance.low_ttl"]
    assert "below Cloudflare's minimum TTL of 60 s" in found[0]
    assert "dns.cloudflare.enterprise = true" in found[0]
    # dns.ttl itself, when below the floor
    found = problems_of(dns_toml("cloudflare", CF_BLOCK, []).replace("\nttl = 300", "\nttl = 45"))
    assert [p.split(":")[0] for p in found] == ["dns.ttl"]


def test_cloudflare_enterprise_allows_30_and_the_default_low_ttl_rises_to_the_floor() -> None:
    text = dns_toml("cloudflare", CF_BLOCK, []).replace('type = "A"\n', 'type = "A"\nttl = 30\n')
    enterprise = parse_config(
        text.replace(CF_BLOCK, CF_BLOCK + "enterprise = true\n") + "[maintenance]\nlow_ttl = 30\n",
        environ=ENVIRON,
    )
    assert enterprise.maintenance.low_ttl == 30
    assert [r.ttl for r in enterprise.dns.records][2] == 30
    plain = parse_config(dns_toml("cloudflare", CF_BLOCK, []), environ=ENVIRON)
    assert plain.maintenance.low_ttl == 60  # the default 30 would be refused by Cloudflare
    rfc = parse_config(
        dns_toml(
            "rfc2136",
            'server = "127.0.0.1"\nkey_name = "k"\nkey_secret = "env:MXCTL_TEST_TSIG"\n',
            [],
        ),
        environ=ENVIRON,
    )
    assert rfc.maintenance.low_ttl == 30
