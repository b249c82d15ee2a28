"""Certificates (issued for the lab, checked for production) and the DKIM record."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from orchestrator.deploy import dkim, tlscerts
from tests.deploy.factories import make_ca

NAMES = ("mx1.example.test", "mail.example.test")


def test_issue_covers_both_names_and_is_kept(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    cert, key = tlscerts.issue_lab_cert(ca_cert, ca_key, NAMES, tmp_path / "tls")
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert tlscerts.check_pair(cert, key, NAMES) == []
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_cert.read_bytes()))
    before = cert.read_bytes(), key.read_bytes()
    assert tlscerts.issue_lab_cert(ca_cert, ca_key, NAMES, tmp_path / "tls") == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == before  # idempotent: nothing reissued


def test_an_address_is_issued_as_an_ip_san_that_tls_verifies(tmp_path: Path) -> None:
    """The lab witness is reached by address: its certificate names that address."""
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    cert, key = tlscerts.issue_lab_cert(ca_cert, ca_key, ("10.254.81.31",), tmp_path / "tls")
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert [str(a) for a in san.value.get_values_for_type(x509.IPAddress)] == ["10.254.81.31"]
    assert san.value.get_values_for_type(x509.DNSName) == []
    assert tlscerts.dns_names(cert) == []
    before = cert.read_bytes()
    tlscerts.issue_lab_cert(ca_cert, ca_key, ("10.254.81.31",), tmp_path / "tls")
    assert cert.read_bytes() == before  # kept: its names are still the wanted ones
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(ca_cert))
    near, far = socket.socketpair()
    with far:
        done = threading.Thread(target=_serve_handshake, args=(server, far))
        done.start()
        with client.wrap_socket(near, server_hostname="10.254.81.31") as tls:
            assert tls.version() is not None  # verified for the address
        done.join(5)


def _serve_handshake(context: ssl.SSLContext, sock: socket.socket) -> None:
    with context.wrap_socket(sock, server_side=True) as tls:
        tls.recv(1)


def test_reissued_when_the_ca_or_the_names_change(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    cert, _ = tlscerts.issue_lab_cert(ca_cert, ca_key, NAMES, tmp_path / "tls")
    first = cert.read_bytes()
    other_cert, other_key = make_ca(tmp_path / "ca2", name="a new lab CA")
    tlscerts.issue_lab_cert(other_cert, other_key, NAMES, tmp_path / "tls")
    second = cert.read_bytes()
    assert second != first
    tlscerts.issue_lab_cert(other_cert, other_key, (*NAMES, "extra.example.test"), tmp_path / "tls")
    assert cert.read_bytes() != second


def test_check_pair_problems(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    cert, key = tlscerts.issue_lab_cert(ca_cert, ca_key, NAMES, tmp_path / "tls")
    assert any(
        "not valid for other.example.test" in p
        for p in tlscerts.check_pair(cert, key, ("other.example.test",))
    )
    os.chmod(key, 0o644)
    assert any("chmod 600" in p for p in tlscerts.check_pair(cert, key, NAMES))
    os.chmod(key, 0o600)
    _, other_key = tlscerts.issue_lab_cert(ca_cert, ca_key, ("x.example.test",), tmp_path / "t2")
    assert any("does not belong" in p for p in tlscerts.check_pair(cert, other_key, NAMES))
    assert tlscerts.check_pair(tmp_path / "missing.pem", key, NAMES)[0].startswith("cannot read")


def test_wildcard_coverage(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    cert, _ = tlscerts.issue_lab_cert(ca_cert, ca_key, ("*.example.test",), tmp_path / "tls")
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert tlscerts.covers(loaded, "mail.example.test")
    assert not tlscerts.covers(loaded, "a.b.example.test")
    assert not tlscerts.covers(loaded, "example.test")


def test_dkim_record_publishes_the_public_key() -> None:
    pem = dkim.generate_private_key_pem()
    assert dkim.check_private_key(pem) is None
    records = dkim.records("mail", ["example.test", "example.org"], pem)
    assert [r.name for r in records] == [
        "mail._domainkey.example.test",
        "mail._domainkey.example.org",
    ]
    value = records[0].value
    assert value.startswith("v=DKIM1; k=rsa; p=")
    public = serialization.load_der_public_key(base64.b64decode(value.split("p=", 1)[1]))
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    assert all(len(c) <= 255 for c in records[0].chunks)
    assert "".join(records[0].chunks) == value
    line = records[0].zone_line()
    assert line.startswith('mail._domainkey.example.test. 3600 IN TXT ( "v=DKIM1;')


def test_dkim_key_checks() -> None:
    assert "PEM RSA" in (dkim.check_private_key("not a key") or "")
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert "RSA" in (dkim.check_private_key(ec_pem.decode()) or "")
