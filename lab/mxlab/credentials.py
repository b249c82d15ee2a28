"""The lab's credentials: SSH client key, host keys, TSIG secret, a private CA.

Everything is generated fresh for each lab and written 0600 under the state directory;
clients receive paths, never the secrets themselves.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from mxlab.procs import run


def write_secret(path: Path, content: str | bytes) -> None:
    """Create a file readable by root only, with no window where it is world-readable."""
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def ssh_keypair(path: Path, comment: str) -> str:
    """An ed25519 key pair at `path` (+ .pub); returns the public key line."""
    if not path.exists():
        run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            what=f"generating the SSH key {path.name}",
        )
    path.chmod(0o600)
    return path.with_suffix(".pub").read_text().strip()


def tsig_secret(path: Path) -> str:
    """A 256-bit HMAC secret, base64, stored alone in a 0600 file (for `file:` references)."""
    if not path.exists():
        write_secret(path, base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path.read_text().strip()


def certificate_authority(directory: Path) -> tuple[Path, Path]:
    """The lab's own CA (certificate, key); host certificates are issued by the deploy."""
    cert, key = directory / "ca.pem", directory / "ca.key"
    if not cert.exists():
        run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", "3650",
                "-subj", "/O=mxctl lab/CN=mxctl lab CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            what="creating the lab certificate authority",
        )  # fmt: skip
    key.chmod(0o600)
    return cert, key
