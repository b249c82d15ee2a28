"""Test data: a throw-away CA, host certificates and a valid inventory for the mail pair."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.deploy import dkim, tlscerts

CLIENT_NAME = "mail.example.com"


def write_secret(path: Path, value: str, mode: int = 0o600) -> str:
    path.write_text(value + "\n")
    os.chmod(path, mode)
    return f"file:{path}"


def make_ca(directory: Path, name: str = "test CA") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def valid_inventory(tmp: Path) -> dict[str, dict[str, Any]]:
    """{host: data} for a correct pair, every secret in a 0600 file under `tmp`."""
    ca_cert, ca_key = make_ca(tmp / "ca")
    hosts: dict[str, dict[str, Any]] = {}
    shared: dict[str, Any] = {
        "mail_domains": ["example.com", "example.org"],
        "mail_client_name": CLIENT_NAME,
        "mail_users": [
            {"address": "alice@example.com", "password": write_secret(tmp / "alice", "a" * 20)},
            {"address": "bob@example.org", "password": write_secret(tmp / "bob", "b" * 20)},
        ],
        "mail_probe_user": {
            "address": "probe@example.com",
            "password": write_secret(tmp / "probe", "p" * 20),
        },
        "mail_aliases": {"postmaster@example.com": "alice@example.com"},
        "mail_replication_port": 12345,
        "mail_replication_password": write_secret(tmp / "doveadm", "d" * 24),
        "mail_dkim_selector": "mail",
        "mail_dkim_key": write_secret(tmp / "dkim.key", dkim.generate_private_key_pem()),
        "postfix_message_size_limit": 52428800,
        "dovecot_mail_max_userip_connections": 20,
        "mail_nameservers": ["192.0.2.53", "2001:db8::53"],
        "mail_guard_interval": 1,
        "mail_guard_lease": 3,
        "mail_guard_timeout": 0.5,
    }
    for name, role, address in (("mx1", "primary", "192.0.2.1"), ("mx2", "standby", "192.0.2.2")):
        fqdn = f"{name}.example.com"
        cert, key = tlscerts.issue_lab_cert(ca_cert, ca_key, (fqdn, CLIENT_NAME), tmp / "tls")
        hosts[name] = {
            **shared,
            "mail_role": role,
            "mail_fqdn": fqdn,
            "mail_addresses": [address],
            "mail_tls_cert": str(cert),
            "mail_tls_key": str(key),
        }
    return hosts
