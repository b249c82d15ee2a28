"""DKIM keys: the one key both hosts sign with, and the TXT record that publishes it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048
_MIN_BITS = 1024
_TXT_CHUNK = 255  # one DNS character-string holds at most 255 bytes


@dataclass(frozen=True)
class DkimRecord:
    """What to publish: `name` IN TXT `value` (split into `chunks` on the wire)."""

    name: str  # e.g. mail._domainkey.example.com
    value: str

    @property
    def chunks(self) -> list[str]:
        return [self.value[i : i + _TXT_CHUNK] for i in range(0, len(self.value), _TXT_CHUNK)]

    def zone_line(self, ttl: int = 3600) -> str:
        quoted = " ".join(f'"{c}"' for c in self.chunks)
        return f"{self.name}. {ttl} IN TXT ( {quoted} )"


def generate_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _load(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    return key


def check_private_key(pem: str) -> str | None:
    """Why `pem` cannot sign DKIM mail, or None when it can."""
    try:
        key = _load(pem)
    except (ValueError, TypeError) as exc:
        return (
            f"not an unencrypted PEM RSA private key ({exc}): "
            "generate one with `openssl genrsa 2048`"
        )
    if key.key_size < _MIN_BITS:
        return f"RSA key of {key.key_size} bits is too short: use {KEY_BITS}"
    return None


def txt_value(pem: str) -> str:
    public = (
        _load(pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def records(selector: str, domains: tuple[str, ...] | list[str], pem: str) -> list[DkimRecord]:
    value = txt_value(pem)
    return [DkimRecord(f"{selector}._domainkey.{domain}", value) for domain in domains]
