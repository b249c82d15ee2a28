"""Real servers for the certificate tests: BIND9 (the zones, RFC 2136) and Pebble (ACME)
on loopback. Pebble resolves DNS-01 challenges at the BIND primary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mxlab.standins.dnsenv import ProviderEnv, bind_env
from mxlab.standins.dnsservers import BindPair
from mxlab.standins.pebble import Pebble


@pytest.fixture(scope="session")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindPair]:
    pair = BindPair(tmp_path_factory.mktemp("bind"))
    try:
        yield pair.start()
    finally:
        pair.stop()


@pytest.fixture(scope="session")
def pebble(bind: BindPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    server = Pebble(tmp_path_factory.mktemp("pebble"), f"{bind.address}:{bind.port}")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def bind_setup(bind: BindPair) -> Iterator[ProviderEnv]:
    setup = bind_env(bind)
    try:
        yield setup
    finally:
        for provider in setup.providers:
            provider.close()
