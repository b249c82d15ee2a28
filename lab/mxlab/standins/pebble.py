"""Let's Encrypt's Pebble (Debian package `pebble`), a real ACME server, on loopback.

Pebble validates DNS-01 challenges by asking the DNS server given with `-dnsserver`
(here the tests' BIND primary), issues from a root it generates at each start, and
publishes that root on its management endpoint (`/roots/0`), which is what clients trust.
Its own HTTPS listener needs a certificate: we make a throw-away one for `localhost`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mxlab.standins.certs import _name, make_authority
from mxlab.standins.dnsservers import _stop, free_port

PEBBLE = "/usr/bin/pebble"


@dataclass
class Pebble:
    workdir: Path
    dns_server: str  # host:port Pebble resolves challenges with
    address: str = "127.0.0.1"
    port: int = 0
    management_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def directory_url(self) -> str:
        return f"https://localhost:{self.port}/dir"

    @property
    def listener_ca(self) -> Path:
        """The CA of Pebble's HTTPS listener (not of the certificates it issues)."""
        return self.workdir / "listener-ca.pem"

    def start(self) -> Pebble:
        if not Path(PEBBLE).exists():
            raise RuntimeError(f"{PEBBLE} missing: apt-get install pebble (.ci/host-packages.txt)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.management_port = free_port(), free_port()
        cert, key = self._listener_certificate()
        config = self.workdir / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"{self.address}:{self.port}",
                        "managementListenAddress": f"{self.address}:{self.management_port}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        "httpPort": free_port(),  # HTTP-01/TLS-ALPN-01: unused, kept local
                        "tlsPort": free_port(),
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",  # validate at once instead of after a random 0-15 s
            # Pebble rejects 5 % of nonces by default to exercise clients' retries; acme
            # retries once, so two in a row would fail a test at random.
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",  # every order answers its challenges (tests see them)
            **self.env,
        }
        log = (self.workdir / "pebble.log").open("wb")
        self.process = subprocess.Popen(
            [PEBBLE, "-config", str(config), "-dnsserver", self.dns_server],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._wait_ready()
        return self

    def stop(self) -> None:
        _stop(self.process)

    def root_pem(self) -> bytes:
        """The root Pebble issues under, from its management endpoint."""
        return self._management("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._management("/intermediates/0")

    def _management(self, path: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        url = f"https://localhost:{self.management_port}{path}"
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bytes(response.read())

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.workdir / "pebble.log").read_text()[-2000:]
                raise RuntimeError(f"pebble exited with {self.process.returncode}: {log}")
            try:
                with urllib.request.urlopen(self.directory_url, context=context, timeout=1):
                    self.root_pem()
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"pebble did not answer at {self.directory_url} within 20 s")

    def _listener_certificate(self) -> tuple[Path, Path]:
        authority = make_authority("pebble listener test CA")
        authority.write(self.listener_ca)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(authority.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(authority.key, hashes.SHA256())
        )
        cert_path, key_path = self.workdir / "listener.pem", self.workdir / "listener.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path
