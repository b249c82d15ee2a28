"""Issuance through a real ACME server (Pebble) answering DNS-01 through a real BIND9 with
the rfc2136 provider: the same path as production, on loopback. No stand-in."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from mxlab.standins.dnsenv import ProviderEnv
from mxlab.standins.pebble import Pebble

from orchestrator.certs.account import load_or_create_account_key
from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.issuer import AcmeIssuer, AcmeServer
from orchestrator.certs.renewal import renewal_due
from orchestrator.certs.store import install, new_private_key_pem, read_installed
from orchestrator.dns.factory import make_verifier
from orchestrator.dns.records import RRset
from orchestrator.errors import CertError, DnsError

NAMES = ("mx1.example.test", "mail.example.test")


def _issuer(pebble: Pebble, tmp_path: Path) -> AcmeIssuer:
    server = AcmeServer(
        pebble.directory_url, ca_bundle=pebble.listener_ca, contact="ops@example.test"
    )
    return AcmeIssuer(server, load_or_create_account_key(tmp_path / "acme" / "account.key"))


def _records(env: ProviderEnv) -> ChallengeRecords:
    provider = env.provider()
    verifier = make_verifier(env.config, provider)
    return ChallengeRecords(provider, verifier.wait)


def _verify_chain(chain_pem: bytes, root_pem: bytes, name: str) -> None:
    leaf, *intermediates = x509.load_pem_x509_certificates(chain_pem)
    store = Store(x509.load_pem_x509_certificates(root_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, intermediates)  # raises VerificationError when it does not chain


def test_pebble_issues_for_all_names_and_challenges_are_removed(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    records = _records(bind_setup)
    issued = _issuer(pebble, tmp_path).issue(NAMES, new_private_key_pem(), records)

    assert issued.facts.names == frozenset(NAMES)
    for name in NAMES:
        _verify_chain(issued.chain_pem, pebble.root_pem(), name)
    assert issued.challenge_owners == (
        "_acme-challenge.mail.example.test.",
        "_acme-challenge.mx1.example.test.",
    )
    reader = bind_setup.provider()
    for owner in issued.challenge_owners:
        assert reader.read(owner, "TXT") == RRset(owner, "TXT")  # cleaned up
    key_mode = stat.S_IMODE((tmp_path / "acme" / "account.key").stat().st_mode)
    assert key_mode == 0o600

    directory = install(tmp_path / "tls", "mx1.example.test", issued.chain_pem, b"KEY")
    assert stat.S_IMODE((directory / "privkey.pem").stat().st_mode) == 0o600
    installed = read_installed(tmp_path / "tls", "mx1.example.test")
    assert installed == issued.facts
    now = datetime.now(UTC)
    assert not renewal_due(installed, frozenset(NAMES), now).due
    assert renewal_due(installed, frozenset(NAMES), now, force=True).due


def test_second_issuance_reuses_the_one_account(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    key_path = tmp_path / "acme" / "account.key"
    _issuer(pebble, tmp_path).issue(NAMES[:1], new_private_key_pem(), _records(bind_setup))
    first = key_path.read_bytes()
    again = _issuer(pebble, tmp_path).issue(NAMES[:1], new_private_key_pem(), _records(bind_setup))
    assert key_path.read_bytes() == first
    assert again.facts.names == frozenset(NAMES[:1])


def test_a_name_the_provider_cannot_answer_for_fails_and_leaves_no_challenge(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    records = _records(bind_setup)
    with pytest.raises(DnsError, match="in none of the configured zones"):
        _issuer(pebble, tmp_path).issue(
            ("mx1.example.test", "mx1.elsewhere.test"), new_private_key_pem(), records
        )
    owner = "_acme-challenge.mx1.example.test."
    assert bind_setup.provider().read(owner, "TXT") == RRset(owner, "TXT")


def test_a_challenge_pebble_cannot_see_is_refused_with_its_reason(
    pebble: Pebble, bind_setup: ProviderEnv, tmp_path: Path
) -> None:
    # The record goes to the provider, then is removed behind our back before Pebble
    # looks: Pebble's real DNS lookup finds nothing and the order fails.
    records = _records(bind_setup)
    force = bind_setup.force
    real_wait = records.wait_served

    def vanish() -> None:
        real_wait()
        for owner in records.published:
            force(RRset(owner, "TXT"))

    records.wait_served = vanish  # type: ignore[method-assign]
    with pytest.raises(CertError, match="refused the DNS-01 challenge"):
        _issuer(pebble, tmp_path).issue(NAMES[:1], new_private_key_pem(), records)
    assert read_installed(tmp_path / "tls", NAMES[0]) is None


def test_cleanup_removes_only_our_values_and_keeps_another_writers(
    bind_setup: ProviderEnv,
) -> None:
    # Another client (a second order, another tool) has a value at the same owner.
    records = ChallengeRecords(bind_setup.provider(), None)
    owner = records.publish("mail.example.test", "ours-0123456789")
    theirs = RRset(owner, "TXT", 60, ('"ours-0123456789"', '"theirs-abcdef"'))
    bind_setup.force(theirs)
    assert records.cleanup() == []
    assert bind_setup.provider().read(owner, "TXT") == RRset(owner, "TXT", 60, ('"theirs-abcdef"',))
    bind_setup.force(RRset(owner, "TXT"))
