"""The lab's ACME server: Let's Encrypt's Pebble (Debian package `pebble`) on the lab host
`acme`, a systemd service there like any other daemon.

Pebble validates DNS-01 challenges at ns1 (the lab's primary, where mxctl's rfc2136
provider writes them), serves its ACME API with a listener certificate from the lab CA
(for its name and address: the controller on the machine side has no lab resolver), and
issues under a root it makes at each start and publishes on its management port. `mxctl
lab up` fetches that root once the host is up, keeps it in the lab's state directory, and
installs it in the system trust store of every lab host booted after it; `trust.pem`
(the lab CA and Pebble's root) is the bundle the lab's probes, mail hosts and clients
verify with, so certificates from either issuer are trusted where the lab's are.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path

from mxlab.procs import run
from mxlab.state import LabState, state_dir
from mxlab.topology import HostSpec, host_spec
from orchestrator.deploy.tlscerts import issue_lab_cert
from orchestrator.errors import LabError

ACME_PORT = 14000
MANAGEMENT_PORT = 15000
ROOT_TIMEOUT = 30.0
CONFIG_PATH = "/etc/pebble/pebble-config.json"
UNIT_PATH = "/etc/systemd/system/pebble.service"
TRUSTED_ROOT_PATH = "/usr/local/share/ca-certificates/mxctl-lab-acme.crt"


def directory_url(spec: HostSpec) -> str:
    return f"https://{spec.address}:{ACME_PORT}/dir"


def root_path() -> Path:
    """Pebble's issuing root, as fetched from its management endpoint at `lab up`."""
    return state_dir() / "acme-root.pem"


def trust_path() -> Path:
    return state_dir() / "trust.pem"


def store_dir() -> Path:
    """The lab's own ACME account and certificate store (`make demo` issues into it)."""
    return state_dir() / "acme"


def issued(name: str) -> tuple[Path, Path] | None:
    """The certificate and key Pebble issued for `name` into the lab's store, if any: the
    lab inventory points the deploy at them, as an operator points it at mxctl's store."""
    cert, key = (
        store_dir() / "tls" / name / "fullchain.pem",
        store_dir() / "tls" / name / "privkey.pem",
    )
    return (cert, key) if cert.exists() and key.exists() else None


def _unit(ns1: HostSpec) -> str:
    return f"""[Unit]
Description=Pebble ACME test server (mxctl lab)
After=network.target

[Service]
# Validate at once, not after a random 0-15 s; never reject a nonce on purpose (acme
# retries a bad nonce once: two in a row would fail a renewal at random); every order
# answers its own challenges, so each renewal exercises the DNS provider.
Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
ExecStart=/usr/bin/pebble -config {CONFIG_PATH} -dnsserver {ns1.address}:53
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def seed(root: Path, spec: HostSpec, ca_cert: Path, ca_key: Path) -> None:
    """Write Pebble's configuration, listener certificate and unit into the host's root."""
    cert, key = issue_lab_cert(
        ca_cert, ca_key, (spec.fqdn, spec.address), state_dir() / "acme-listener"
    )
    etc = root / "etc/pebble"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "listener.pem").write_bytes(cert.read_bytes())
    (etc / "listener.key").write_bytes(key.read_bytes())
    (etc / "listener.key").chmod(0o600)
    config = {
        "pebble": {
            "listenAddress": f"0.0.0.0:{ACME_PORT}",
            "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
            "certificate": "/etc/pebble/listener.pem",
            "privateKey": "/etc/pebble/listener.key",
            "httpPort": 5002,  # HTTP-01 and TLS-ALPN-01 are not used in the lab
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (root / CONFIG_PATH.lstrip("/")).write_text(json.dumps(config, indent=2) + "\n")
    (root / UNIT_PATH.lstrip("/")).write_text(_unit(host_spec("ns1")))
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "pebble.service"
    link.unlink(missing_ok=True)
    link.symlink_to(UNIT_PATH)


def fetch_root(spec: HostSpec, ca_cert: Path, timeout: float = ROOT_TIMEOUT) -> bytes:
    """Pebble's issuing root from its management endpoint, once it answers."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    url = f"https://{spec.address}:{MANAGEMENT_PORT}/roots/0"
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:
                pem = bytes(response.read())
            if pem.startswith(b"-----BEGIN CERTIFICATE-----"):
                return pem
            last = f"not a PEM certificate: {pem[:60]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise LabError(
        f"Pebble on {spec.name} did not publish its root at {url} within {timeout:.0f} s "
        f"({last}): see `journalctl -u pebble` on {spec.name} (mxctl lab exec {spec.name})"
    )


def keep_root(pem: bytes, ca_cert: Path) -> None:
    root_path().write_bytes(pem)
    trust_path().write_bytes(ca_cert.read_bytes().rstrip(b"\n") + b"\n" + pem)


def trust_in(root: Path) -> None:
    """Install Pebble's root (once fetched) in a host's system trust store, before boot."""
    if not root_path().exists():
        return
    target = root / TRUSTED_ROOT_PATH.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(root_path().read_bytes())
    run(
        ["chroot", str(root), "update-ca-certificates"],
        what=f"trusting the lab's ACME root in {root}",
    )


def trust_file(lab: LabState) -> str:
    """The CA bundle lab clients verify with: the lab CA, and Pebble's root when it runs."""
    return lab.extra.get("trust") or lab.ca_cert


def certs_section(lab: LabState, directory: Path, client_name: str) -> str:
    """A `[certs]` section for the lab's Pebble: a certificate per mail host, for its name
    and the client-facing name, kept under `directory` (account key and store). Not in
    the lab's own mxctl.toml: a controller deployed from that would renew on its own."""
    if "acme_directory" not in lab.extra:
        raise LabError("this lab has no ACME host (lab.json predates it): rebuild the lab")
    mail = sorted((h for h in lab.hosts.values() if h.role == "mail"), key=lambda h: h.name)
    names = "\n".join(f'"{h.fqdn}" = ["{h.fqdn}", "{client_name}"]' for h in mail)
    return f"""
[certs]
directory_url = "{lab.extra["acme_directory"]}"
account_key = "{directory}/account.key"
ca_bundle = "{lab.ca_cert}"
store = "{directory}/tls"
attempts = 2
retry_wait = 5

[certs.certificates]
{names}
"""
