"""Password hashes for Dovecot's passwd-file: ARGON2ID for new ones, SHA512-CRYPT still read.

The deploy hashes on the deploying machine, so a plaintext password never reaches a host. It
keeps a host's existing hash when that hash still matches the password, so a re-run uploads
nothing; a host deployed by an older mxctl keeps its `{SHA512-CRYPT}` hashes (Dovecot still
verifies them) until a password changes, and the new hash is then ARGON2ID.

Stored values carry Dovecot's scheme prefix: `{ARGON2ID}$argon2id$v=19$m=...` or
`{SHA512-CRYPT}$6$...`; an unprefixed `$6$` or `$argon2id$` string is read by its shape.
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from passlib.hash import sha512_crypt  # libpass, the maintained fork of passlib

ARGON2ID = "ARGON2ID"
SHA512_CRYPT = "SHA512-CRYPT"

# Dovecot 2.3.19 on Debian 12 verifies ARGON2ID with libsodium (crypto_pwhash_str_verify).
# - parallelism 1: the only shape libsodium itself creates; it computes lanes one after
#   another on one thread, so p>1 would cost the server the same time with no parallel
#   speed-up, and a hash only verifies where libsodium accepts its parameters.
# - m=19 MiB, t=2: OWASP's minimum for Argon2id. Dovecot's auth worker recomputes the hash on
#   every login, without an auth cache; the probe logs in (IMAP and submission) every second
#   on each host, and at about 20 ms a verify (bench/password_hash.py) that is ~4 % of
#   one core. libsodium's own "interactive" preset (64 MiB, t=2) takes about 4x longer.
MEMORY_KIB = 19456
TIME_COST = 2
PARALLELISM = 1

_HASHER = argon2.PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=argon2.Type.ID,
)


def argon2id(password: str) -> str:
    """A new `{ARGON2ID}` hash of `password`, with a fresh random salt."""
    return f"{{{ARGON2ID}}}{_HASHER.hash(password)}"


def split_scheme(stored: str) -> tuple[str, str] | None:
    """(scheme, hash) of a stored value, or None when it is no scheme we read."""
    if stored.startswith("{"):
        scheme, closed, body = stored[1:].partition("}")
        if not closed:
            return None
    elif stored.startswith("$argon2id$"):
        scheme, body = ARGON2ID, stored
    elif stored.startswith("$6$"):
        scheme, body = SHA512_CRYPT, stored
    else:
        return None
    scheme = scheme.upper()
    if scheme == ARGON2ID and body.startswith("$argon2id$"):
        return scheme, body
    if scheme == SHA512_CRYPT and body.startswith("$6$"):
        return scheme, body
    return None


def verify(password: str, stored: str) -> bool:
    """Whether `stored` (ARGON2ID or the legacy SHA512-CRYPT) is a hash of `password`."""
    parsed = split_scheme(stored)
    if parsed is None:
        return False
    scheme, body = parsed
    if scheme == ARGON2ID:
        try:
            return _HASHER.verify(body, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        return bool(sha512_crypt.verify(password, body))
    except ValueError:  # malformed `$6$` string (bad rounds, salt or digest)
        return False


def hash_keeping(password: str, existing: str | None) -> str:
    """`existing` (with its scheme prefix) when it still matches `password`, so deploys are
    idempotent; otherwise a new ARGON2ID hash."""
    if existing:
        parsed = split_scheme(existing)
        if parsed is not None and verify(password, existing):
            scheme, body = parsed
            return f"{{{scheme}}}{body}"
    return argon2id(password)
