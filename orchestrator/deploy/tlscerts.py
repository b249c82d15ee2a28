"""Host certificates: checking the ones production names, issuing the lab's from its CA.

Both hosts carry a certificate valid for their own name and for the client-facing name
(e.g. mail.example.com), so clients notice nothing when DNS moves that name to the standby.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LAB_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _names_of(cert: x509.Certificate, addresses: bool = True) -> list[str]:
    """Its DNS names, then (unless not wanted) its IP addresses, as text."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n).lower() for n in san.get_values_for_type(x509.DNSName)]
    if addresses:
        names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return names


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def dns_names(cert_path: Path) -> list[str]:
    """The DNS names a PEM certificate file is valid for."""
    return _names_of(x509.load_pem_x509_certificate(cert_path.read_bytes()), addresses=False)


def covers(cert: x509.Certificate, name: str) -> bool:
    """Whether the certificate's DNS SANs match `name` (one-label wildcards included)."""
    for san in _names_of(cert):
        if san == name:
            return True
        if san.startswith("*.") and name.partition(".")[2] == san[2:]:
            return True
    return False


def _spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_pair(cert_path: Path, key_path: Path, names: Sequence[str]) -> list[str]:
    """Problems with a certificate/key pair for `names`; empty when it will do."""
    problems: list[str] = []
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        return [f"cannot read certificate {cert_path}: {exc.strerror}"]
    except ValueError:
        return [f"{cert_path} is not a PEM certificate"]
    try:
        info = key_path.stat()
        key_pem = key_path.read_bytes()
    except OSError as exc:
        return [f"cannot read private key {key_path}: {exc.strerror}"]
    if stat.S_IMODE(info.st_mode) & 0o077:
        problems.append(f"private key {key_path} is readable by others: run `chmod 600 {key_path}`")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return [*problems, f"{key_path} is not an unencrypted PEM private key"]
    if _spki(key.public_key()) != _spki(cert.public_key()):
        problems.append(f"private key {key_path} does not belong to {cert_path}")
    for name in names:
        if not covers(cert, name):
            problems.append(f"{cert_path} is not valid for {name} (its names: {_names_of(cert)})")
    if cert.not_valid_after_utc <= _now():
        problems.append(f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return problems


def check_ca_bundle(path: Path) -> str | None:
    """Why `path` is not a usable PEM CA bundle, or None."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        return f"cannot read CA bundle {path}: {exc.strerror}"
    except ValueError:
        return f"{path} holds no PEM certificate"
    if not certs:
        return f"{path} holds no PEM certificate"
    return None


def _sign_hash(key: object) -> hashes.SHA256 | None:
    return (
        None
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )


def _still_good(
    cert_path: Path, key_path: Path, names: Sequence[str], ca: x509.Certificate
) -> bool:
    if not cert_path.exists() or not key_path.exists() or check_pair(cert_path, key_path, names):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if set(_names_of(cert)) != {n.lower() for n in names}:
        return False
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def issue_lab_cert(
    ca_cert_path: Path, ca_key_path: Path, names: Sequence[str], out_dir: Path
) -> tuple[Path, Path]:
    """A certificate for `names` (DNS names or IP addresses) signed by the lab CA, kept while
    still valid (idempotent)."""
    ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    cert_path = out_dir / f"{names[0]}.crt"
    key_path = out_dir / f"{names[0]}.key"
    if _still_good(cert_path, key_path, names, ca):
        return cert_path, key_path
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(
        ca_key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise ValueError(f"{ca_key_path}: unsupported CA key type")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + LAB_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
            False,
        )
        .sign(ca_key, _sign_hash(ca_key))
    )
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
