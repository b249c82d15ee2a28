"""SHA512-CRYPT (`$6$`) password hashes, as Dovecot's passwd-file and glibc crypt(3) read them.

Pure Python (the `crypt` module is deprecated and gone in 3.13). The deploy hashes on the
deploying machine, so a plaintext password never reaches a host; it keeps a host's existing
hash when that hash still matches, so a re-run uploads nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEFAULT_ROUNDS = 5000
_MIN_ROUNDS, _MAX_ROUNDS = 1000, 999_999_999
_SALT_LEN = 16

# Which digest bytes make up each group of four output characters (Drepper's spec).
_ORDER = (
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
)


def _b64(b2: int, b1: int, b0: int, count: int) -> str:
    word = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(count):
        out.append(ALPHABET[word & 0x3F])
        word >>= 6
    return "".join(out)


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // len(digest) + 1))[:length]


def _digest(password: bytes, salt: bytes, rounds: int) -> bytes:
    alt = hashlib.sha512(password + salt + password).digest()
    ctx = hashlib.sha512(password + salt)
    ctx.update(_repeat(alt, len(password)))
    n = len(password)
    while n:
        ctx.update(alt if n & 1 else password)
        n >>= 1
    a = ctx.digest()
    p_seq = _repeat(hashlib.sha512(password * len(password)).digest(), len(password))
    s_seq = _repeat(hashlib.sha512(salt * (16 + a[0])).digest(), len(salt))
    c = a
    for i in range(rounds):
        h = hashlib.sha512(p_seq if i & 1 else c)
        if i % 3:
            h.update(s_seq)
        if i % 7:
            h.update(p_seq)
        h.update(c if i & 1 else p_seq)
        c = h.digest()
    return c


def sha512_crypt(password: str, salt: str | None = None, rounds: int = DEFAULT_ROUNDS) -> str:
    """The `$6$` crypt string of `password`; a fresh random salt unless one is given."""
    if salt is None:
        salt = "".join(secrets.choice(ALPHABET) for _ in range(_SALT_LEN))
    salt = salt[:_SALT_LEN]
    if any(ch in "$:\n" for ch in salt):
        raise ValueError("salt must not contain '$', ':' or newlines")
    rounds = min(max(rounds, _MIN_ROUNDS), _MAX_ROUNDS)
    c = _digest(password.encode(), salt.encode(), rounds)
    body = "".join(_b64(c[x], c[y], c[z], 4) for x, y, z in _ORDER) + _b64(0, 0, c[63], 2)
    prefix = "$6$" if rounds == DEFAULT_ROUNDS else f"$6$rounds={rounds}$"
    return f"{prefix}{salt}${body}"


def parse(hashed: str) -> tuple[str, int] | None:
    """(salt, rounds) of a `$6$` string, or None when it is not one."""
    parts = hashed.split("$")
    if len(parts) < 4 or parts[0] != "" or parts[1] != "6":
        return None
    rounds = DEFAULT_ROUNDS
    fields = parts[2:]
    if fields[0].startswith("rounds="):
        try:
            rounds = int(fields[0].removeprefix("rounds="))
        except ValueError:
            return None
        fields = fields[1:]
    if len(fields) != 2:
        return None
    return fields[0], rounds


def verify(password: str, hashed: str) -> bool:
    """Whether `hashed` (a `$6$` string, optionally `{SHA512-CRYPT}`-prefixed) matches."""
    hashed = hashed.removeprefix("{SHA512-CRYPT}")
    parsed = parse(hashed)
    if parsed is None:
        return False
    salt, rounds = parsed
    return hmac.compare_digest(sha512_crypt(password, salt, rounds), hashed)


def hash_keeping(password: str, existing: str | None) -> str:
    """`existing` when it still matches `password` (idempotent deploys), else a new hash."""
    if existing and verify(password, existing):
        return existing.removeprefix("{SHA512-CRYPT}")
    return sha512_crypt(password)
