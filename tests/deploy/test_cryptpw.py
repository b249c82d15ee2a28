"""Password hashes: new ones ARGON2ID that libsodium (Dovecot's verifier) accepts; legacy
SHA512-CRYPT ones as glibc, openssl and Dovecot computed them still verify."""

from __future__ import annotations

import ctypes
import subprocess

import pytest

from orchestrator.deploy import cryptpw

# Test vectors from Ulrich Drepper's SHA-crypt specification: hashes an older mxctl (or any
# crypt(3)) left on a host.
SHA512_VECTORS = [
    (
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0",
    ),
]


def libsodium() -> ctypes.CDLL:
    # The library Dovecot links for its ARGON2* schemes (libsodium23, .ci/host-packages.txt):
    # missing is a failure, not a skip.
    sodium = ctypes.CDLL("libsodium.so.23")
    assert sodium.sodium_init() >= 0
    return sodium


def sodium_verifies(stored: str, password: str) -> bool:
    """crypto_pwhash_str_verify, the call Dovecot's ARGON2ID scheme makes."""
    scheme, body = stored[1:].split("}", 1)
    assert scheme == "ARGON2ID"
    secret = password.encode()
    result = libsodium().crypto_pwhash_str_verify(
        ctypes.c_char_p(body.encode()), ctypes.c_char_p(secret), ctypes.c_ulonglong(len(secret))
    )
    return int(result) == 0


@pytest.mark.parametrize(("password", "legacy"), SHA512_VECTORS)
def test_legacy_sha512_crypt_verifies(password: str, legacy: str) -> None:
    for stored in (legacy, "{SHA512-CRYPT}" + legacy, "{sha512-crypt}" + legacy):
        assert cryptpw.verify(password, stored)
        assert not cryptpw.verify(password + "x", stored)


def test_legacy_hash_from_openssl_verifies() -> None:
    # openssl comes with `make bootstrap` (.ci/host-packages.txt): missing is a failure.
    password = "pässwörd with spaces and a long tail " * 3
    legacy = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "AbCdEfGh12345678", password],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert cryptpw.verify(password, "{SHA512-CRYPT}" + legacy)
    assert not cryptpw.verify(password[:-1], "{SHA512-CRYPT}" + legacy)


def test_new_hashes_are_argon2id_with_the_chosen_parameters() -> None:
    a, b = cryptpw.argon2id("secret"), cryptpw.argon2id("secret")
    assert a != b  # fresh salts
    prefix = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"
    assert a.startswith(prefix) and b.startswith(prefix)
    assert cryptpw.verify("secret", a) and not cryptpw.verify("Secret", a)


@pytest.mark.parametrize("password", ["secret", "pässwörd", "x" * 200, "with:colon and space"])
def test_libsodium_verifies_new_hashes(password: str) -> None:
    stored = cryptpw.argon2id(password)
    assert sodium_verifies(stored, password)
    assert not sodium_verifies(stored, password + "!")


def test_hash_keeping_reuses_a_matching_hash() -> None:
    current = cryptpw.argon2id("secret")
    assert cryptpw.hash_keeping("secret", current) == current
    changed = cryptpw.hash_keeping("new secret", current)
    assert changed != current and cryptpw.verify("new secret", changed)
    assert changed.startswith("{ARGON2ID}")
    assert cryptpw.verify("x", cryptpw.hash_keeping("x", None))


def test_legacy_hash_is_kept_until_the_password_changes() -> None:
    password, legacy = SHA512_VECTORS[0]
    assert cryptpw.hash_keeping(password, "{SHA512-CRYPT}" + legacy) == "{SHA512-CRYPT}" + legacy
    # An unprefixed one gets its scheme named (Dovecot's default scheme is now ARGON2ID).
    assert cryptpw.hash_keeping(password, legacy) == "{SHA512-CRYPT}" + legacy
    rehashed = cryptpw.hash_keeping("a new password", "{SHA512-CRYPT}" + legacy)
    assert rehashed.startswith("{ARGON2ID}$argon2id$")
    assert cryptpw.verify("a new password", rehashed)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "{PLAIN}secret",
        "$1$md5$hash",
        "$6$rounds=x$salt$hash",
        "$6$only",
        "{SHA512-CRYPT}$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "{ARGON2ID}$6$saltstring$abc",
        "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$broken",
        "{ARGON2ID$argon2id$",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_verify_rejects_other_formats(bad: str) -> None:
    assert not cryptpw.verify("secret", bad)
    assert cryptpw.hash_keeping("secret", bad).startswith("{ARGON2ID}$argon2id$")
