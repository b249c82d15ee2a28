"""Renewal at two thirds of the lifetime, as a table; the account key's file rules."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.certs.account import load_or_create_account_key
from orchestrator.certs.renewal import CertFacts, renewal_due
from orchestrator.errors import CertError

START = datetime(2026, 9, 1, tzinfo=UTC)
NINETY_DAYS = CertFacts(
    frozenset({"mx1.example.test", "mail.example.test"}), START, START + timedelta(days=90)
)
NAMES = frozenset({"mx1.example.test", "mail.example.test"})

CASES = [
    # (certificate, wanted names, days after START, force, due, reason contains)
    (None, NAMES, 0, False, True, "no certificate installed"),
    (NINETY_DAYS, NAMES, 0, False, False, "renewal due at 2026-10-31T00:00:00+00:00"),
    (NINETY_DAYS, NAMES, 59.99, False, False, "valid until 2026-11-30"),
    (NINETY_DAYS, NAMES, 60, False, True, "two thirds of the lifetime passed"),
    (NINETY_DAYS, NAMES, 89, False, True, "two thirds of the lifetime passed"),
    (NINETY_DAYS, NAMES, 90, False, True, "expired at 2026-11-30"),
    (NINETY_DAYS, NAMES, 1, True, True, "renewal forced"),
    (NINETY_DAYS, NAMES | {"mx2.example.test"}, 1, False, True, "does not cover mx2.example.test"),
    (NINETY_DAYS, frozenset({"mail.example.test"}), 1, False, False, "valid until"),
    (CertFacts(NAMES, START, START), NAMES, 0, False, True, "no valid lifetime"),
    # A six-day certificate (Let's Encrypt's short-lived profile): due after four days.
    (CertFacts(NAMES, START, START + timedelta(days=6)), NAMES, 3.9, False, False, "valid"),
    (CertFacts(NAMES, START, START + timedelta(days=6)), NAMES, 4, False, True, "two thirds"),
]


@pytest.mark.parametrize(("cert", "wanted", "days", "force", "due", "reason"), CASES)
def test_renewal_due(
    cert: CertFacts | None, wanted: frozenset[str], days: float, force: bool, due: bool, reason: str
) -> None:
    decision = renewal_due(cert, wanted, START + timedelta(days=days), force)
    assert decision.due is due
    assert reason in decision.reason


def test_account_key_is_created_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "acme" / "account.key"
    created = load_or_create_account_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_account_key(path).thumbprint() == created.thumbprint()


def test_account_key_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "account.key"
    load_or_create_account_key(path)
    path.chmod(0o644)
    with pytest.raises(CertError, match=rf"certs.account_key: {path} is readable .*chmod 600"):
        load_or_create_account_key(path)


def test_account_key_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "account.key"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(CertError, match="not an unencrypted PEM private key"):
        load_or_create_account_key(path)
    with pytest.raises(CertError, match="must be an absolute path"):
        load_or_create_account_key(Path("relative.key"))
