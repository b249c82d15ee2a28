"""Certificates on disk: one directory per certificate, the key 0600, replaced atomically.

Layout `<store>/<name>/fullchain.pem` (leaf first, then the chain) and `privkey.pem`,
which is what the deploy reads (`tls_cert`, `tls_key` of a host). Each file is written to a
temporary file in the same directory and renamed over the old one, so a reader sees either
the old or the new file, never half of one; a failed issuance leaves both untouched.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.certs.renewal import CertFacts
from orchestrator.errors import CertError

CHAIN_FILE = "fullchain.pem"
KEY_FILE = "privkey.pem"


def new_private_key_pem() -> bytes:
    """A fresh P-256 key for each issuance (a renewal never reuses the old key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_facts(chain_pem: bytes) -> CertFacts:
    """Names, validity and issuer of the first (leaf) certificate of a PEM chain."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    except ValueError as exc:
        raise CertError(f"not a PEM certificate chain ({exc})") from None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = san.value.get_values_for_type(x509.DNSName)
        names = frozenset(n.lower().rstrip(".") for n in dns_names)
    except x509.ExtensionNotFound:
        names = frozenset()
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return CertFacts(
        names=names,
        not_before=leaf.not_valid_before_utc.astimezone(UTC),
        not_after=leaf.not_valid_after_utc.astimezone(UTC),
        issuer=str(issuer[0].value) if issuer else leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
    )


def read_installed(store: Path, name: str) -> CertFacts | None:
    """The certificate stored for `name`, or None when there is none yet."""
    path = store / name / CHAIN_FILE
    try:
        return cert_facts(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CertError(f"cannot read {path}: {exc.strerror}") from None


def install(store: Path, name: str, chain_pem: bytes, key_pem: bytes) -> Path:
    """Store a new certificate and its key for `name`; returns its directory."""
    directory = store / name
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    # The key first: a reload between the two renames then fails the key/cert match
    # check loudly rather than serving with a stale key.
    _replace(directory / KEY_FILE, key_pem, 0o600)
    _replace(directory / CHAIN_FILE, chain_pem, 0o644)
    return directory


def _replace(path: Path, data: bytes, mode: int) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
