"""The one ACME account key: created once, kept 0600, refused when others can read it.

Whoever holds the account key can revoke every certificate the account was issued, so it
is a secret like a TSIG key: never logged, never in a repr (josepy's JWK repr prints the
key object, so this module only hands the JWK to the ACME client).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from orchestrator.errors import CertError

ACCOUNT_KEY_BITS = 2048  # RS256: accepted by every ACME server (Let's Encrypt, Pebble)


def load_or_create_account_key(path: Path) -> JWKRSA:
    """Read the account key at `path`, creating it (0600, directory 0700) when absent."""
    if not path.is_absolute():
        raise CertError(f"certs.account_key: {path} must be an absolute path")
    try:
        info = path.stat()
    except FileNotFoundError:
        return _create(path)
    if not stat.S_ISREG(info.st_mode):
        raise CertError(f"certs.account_key: {path} is not a regular file")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CertError(
            f"certs.account_key: {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):o}): run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise CertError(
            f"certs.account_key: {path} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertError(f"certs.account_key: {path} must be an RSA key")
    return JWKRSA(key=key)


def _create(path: Path) -> JWKRSA:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=ACCOUNT_KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: two renewals starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_account_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return JWKRSA(key=key)
