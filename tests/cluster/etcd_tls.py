"""A throwaway CA, an etcd server certificate for 127.0.0.1 and a client certificate,
for the TLS test (etcd with --client-cert-auth: only clients the CA signed get in)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.cluster.etcd import TlsFiles


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


def _issue(
    subject: str,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    usage: list[x509.ObjectIdentifier],
    ca: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer if not ca else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(key if ca else signer, hashes.SHA256()), key


def make_tls(folder: Path) -> tuple[TlsFiles, TlsFiles]:
    """(server files, client files); both name the same CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _issue(
        "mxctl test etcd CA", _name("unused"), ec.generate_private_key(ec.SECP256R1()), [], ca=True
    )
    _write(folder / "ca", ca_cert, ca_key)
    # etcd 3.4's JSON gateway dials the member's own gRPC port presenting the *server*
    # certificate as its client certificate: with --client-cert-auth the server certificate
    # must allow client authentication too, or every /v3 call is cut off.
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    server = _issue("etcd", ca_cert.subject, ca_key, both)
    _write(folder / "server", *server)
    client = _issue("ctl1", ca_cert.subject, ca_key, [ExtendedKeyUsageOID.CLIENT_AUTH])
    _write(folder / "client", *client)
    ca = folder / "ca.pem"
    return (
        TlsFiles(ca, folder / "server.pem", folder / "server.key"),
        TlsFiles(ca, folder / "client.pem", folder / "client.key"),
    )
