"""SHA512-CRYPT hashes as glibc and Dovecot compute them."""

from __future__ import annotations

import subprocess

import pytest

from orchestrator.deploy import cryptpw

# Test vectors from Ulrich Drepper's SHA-crypt specification.
VECTORS = [
    (
        "Hello world!",
        "saltstring",
        5000,
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "Hello world!",
        "saltstringsaltstring",
        10000,
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "we have a short salt string but not a short password",
        "short",
        77777,
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0",
    ),
]


@pytest.mark.parametrize(("password", "salt", "rounds", "expected"), VECTORS)
def test_spec_vectors(password: str, salt: str, rounds: int, expected: str) -> None:
    assert cryptpw.sha512_crypt(password, salt, rounds) == expected
    assert cryptpw.verify(password, expected)
    assert not cryptpw.verify(password + "x", expected)


def test_matches_openssl() -> None:
    # openssl comes with `make bootstrap` (.ci/host-packages.txt): missing is a failure.
    password = "pässwörd with spaces and a long tail " * 3
    expected = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "AbCdEfGh12345678", password],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert cryptpw.sha512_crypt(password, "AbCdEfGh12345678") == expected


def test_fresh_salts_differ_and_verify() -> None:
    a, b = cryptpw.sha512_crypt("secret"), cryptpw.sha512_crypt("secret")
    assert a != b
    assert cryptpw.verify("secret", a) and cryptpw.verify("secret", "{SHA512-CRYPT}" + b)


def test_hash_keeping_reuses_a_matching_hash() -> None:
    current = "{SHA512-CRYPT}" + cryptpw.sha512_crypt("secret")
    assert cryptpw.hash_keeping("secret", current) == current.removeprefix("{SHA512-CRYPT}")
    changed = cryptpw.hash_keeping("new secret", current)
    assert changed != current and cryptpw.verify("new secret", changed)
    assert cryptpw.verify("x", cryptpw.hash_keeping("x", None))


@pytest.mark.parametrize("bad", ["", "plain", "$1$md5$hash", "$6$rounds=x$salt$hash", "$6$only"])
def test_verify_rejects_other_formats(bad: str) -> None:
    assert not cryptpw.verify("secret", bad)
