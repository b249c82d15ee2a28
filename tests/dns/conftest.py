"""Fixtures for the DNS tests: real BIND9 and PowerDNS on loopback, the Cloudflare stand-in.

`env` is parametrised over every provider setup (mxlab.standins.dnsenv), so a test that
takes it is a contract test run against each: RFC 2136 to BIND, RFC 2136 to PowerDNS, the
PowerDNS HTTP API, Cloudflare (real SDK against mxlab/standins/cloudflare.py, the one
sanctioned stand-in), and Route 53 (real boto3 against moto's server). Each test starts
from the baseline zones: MX -> mx1, mail A -> mx1. Retries sleep on a FakeClock.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import pytest
from mxlab.standins import route53_moto
from mxlab.standins.dnsenv import (  # noqa: F401  (re-exported to the test modules)
    BASELINE,
    ENVIRON,
    OWNED,
    PROVIDERS,
    ProviderEnv,
    bind_env,
    cloudflare_env,
    dns_toml,
    load_dns,
    make_standin,
    pdns_api_env,
    pdns_rfc2136_env,
    route53_env,
)
from mxlab.standins.dnsservers import BindPair, PowerDns

from orchestrator.cli import dns_cmd
from orchestrator.errors import MxctlError
from tests.fakes import FakeClock


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
    setup.clock = FakeClock()
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
