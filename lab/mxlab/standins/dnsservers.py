"""Real DNS servers for the tests, on loopback: BIND9 (primary + secondary) and PowerDNS.

Each server runs in the foreground as a child of the test process, from its own config in
a temporary directory, on a free high port; `stop()` terminates it and waits, so no
process outlives the fixture that started it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query

TSIG_NAME = "mxctl-test."
TSIG_SECRET = base64.b64encode(b"mxctl-test-secret-0123456789abcd").decode()
ZONES = ("example.test.", "example.org.")
MX1 = "192.0.2.21"
MX2 = "192.0.2.22"
MX2_V6 = "2001:db8::22"
PDNS_API_KEY = "pdns-test-api-key"


def free_port(address: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `address`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def zone_text(zone: str, ns_addresses: tuple[str, str], serial: int = 1) -> str:
    """The baseline zones: MX -> mx1, `mail` A -> mx1, mx1/mx2 addresses, two NS."""
    head = (
        f"$ORIGIN {zone}\n$TTL 300\n"
        f"@ SOA ns1.example.test. hostmaster.example.test. {serial} 60 60 3600 60\n"
        "@ NS ns1.example.test.\n@ NS ns2.example.test.\n"
    )
    if zone == "example.test.":
        return head + (
            f"ns1 A {ns_addresses[0]}\nns2 A {ns_addresses[1]}\n"
            f"mx1 A {MX1}\nmx2 A {MX2}\nmx2 AAAA {MX2_V6}\nmail A {MX1}\n@ MX 10 mx1\n"
        )
    return head + "@ MX 10 mx1.example.test.\n"


def wait_for_dns(address: str, port: int, zone: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    query = dns.message.make_query(zone, "SOA")
    query.flags &= ~dns.flags.RD
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {address}:{port} exited with {process.returncode}")
        try:
            response = dns.query.udp(query, address, port=port, timeout=0.5)
            if response.answer and response.flags & dns.flags.AA:
                return
        except (dns.exception.DNSException, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {address}:{port} did not serve {zone} within 20 s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class BindPair:
    """A BIND primary and a secondary (NOTIFY + AXFR) on 127.0.0.1, each on its own port.

    (named listens only on addresses configured on an interface, so the two servers share
    127.0.0.1 and differ by port; the host's network configuration is left alone.)
    """

    workdir: Path
    address: str = "127.0.0.1"
    port: int = 0
    secondary_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [f"{self.address}:{self.port}", f"{self.address}:{self.secondary_port}"]

    def start(self) -> BindPair:
        self.port = free_port(self.address)
        self.secondary_port = free_port(self.address)
        for role, port in (("primary", self.port), ("secondary", self.secondary_port)):
            directory = self.workdir / role
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "named.conf"
            conf.write_text(self._config(role, directory))
            if role == "primary":
                for zone in ZONES:
                    text = zone_text(zone, (self.address, self.address))
                    (directory / f"{zone}db").write_text(text)
            log = (directory / "named.log").open("wb")
            process = subprocess.Popen(
                ["named", "-f", "-g", "-4", "-n", "1", "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.processes.append(process)
            for zone in ZONES:
                wait_for_dns(self.address, port, zone, process)
        return self

    def _config(self, role: str, directory: Path) -> str:
        address = self.address
        port = self.port if role == "primary" else self.secondary_port
        options = f"""
options {{
    directory "{directory}";
    pid-file none;
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify-delay 0;
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
}};
controls {{ }};
key "{TSIG_NAME}" {{ algorithm hmac-sha256; secret "{TSIG_SECRET}"; }};
"""
        zones = []
        for zone in ZONES:
            if role == "primary":
                zones.append(
                    f'zone "{zone}" {{ type primary; file "{directory}/{zone}db"; '
                    f"update-policy {{ grant {TSIG_NAME} zonesub ANY; }}; notify explicit; "
                    f"also-notify {{ {address} port {self.secondary_port}; }}; "
                    "allow-transfer { 127.0.0.0/8; }; };"
                )
            else:
                zones.append(
                    f'zone "{zone}" {{ type secondary; file "{directory}/{zone}sec"; '
                    f"primaries {{ {address} port {self.port}; }}; "
                    "allow-notify { 127.0.0.0/8; }; };"
                )
        return options + "\n".join(zones) + "\n"

    def stop(self) -> None:
        for process in self.processes:
            _stop(process)
        self.processes.clear()


@dataclass
class PowerDns:
    """pdns_server with the gsqlite3 backend, its HTTP API, and RFC 2136 updates enabled."""

    workdir: Path
    address: str = "127.0.0.1"
    port: int = 0
    api_port: int = 0
    api_key: str = PDNS_API_KEY
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> PowerDns:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.address)
        self.api_port = free_port("127.0.0.1")
        database = self.workdir / "pdns.sqlite3"
        schema = Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql").read_text()
        with sqlite3.connect(database) as db:
            db.executescript(schema)
        (self.workdir / "pdns.conf").write_text("")
        args = [
            shutil.which("pdns_server") or "/usr/sbin/pdns_server",
            f"--config-dir={self.workdir}",
            f"--socket-dir={self.workdir}",
            "--daemon=no",
            "--guardian=no",
            "--disable-syslog",
            "--loglevel=4",
            "--launch=gsqlite3",
            f"--gsqlite3-database={database}",
            f"--local-address={self.address}",
            f"--local-port={self.port}",
            "--api=yes",
            f"--api-key={self.api_key}",
            "--webserver=yes",
            "--webserver-address=127.0.0.1",
            f"--webserver-port={self.api_port}",
            "--webserver-allow-from=127.0.0.0/8",
            "--dnsupdate=yes",
            "--allow-dnsupdate-from=127.0.0.0/8",
            "--security-poll-suffix=",
            "--receiver-threads=1",
            "--distributor-threads=1",
            "--cache-ttl=0",
            "--negquery-cache-ttl=0",
            "--query-cache-ttl=0",
            "--zone-cache-refresh-interval=0",
        ]
        log = (self.workdir / "pdns.log").open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_api()
        self.api(
            "POST", "/tsigkeys", {"name": TSIG_NAME, "algorithm": "hmac-sha256", "key": TSIG_SECRET}
        )
        for zone in ZONES:
            self.create_zone(zone)
        wait_for_dns(self.address, self.port, ZONES[0], self.process)
        return self

    def _wait_api(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.workdir / "pdns.log").read_text()
                raise RuntimeError(f"pdns_server exited: {log[-2000:]}")
            try:
                self.api("GET", "/servers/localhost")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("pdns_server API did not come up in 20 s")

    def api(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api_url}/api/v1{path.replace('/servers/localhost', '', 0)}"
            if path.startswith("/servers")
            else f"{self.api_url}/api/v1/servers/localhost{path}",
            data=data,
            method=method,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def create_zone(self, zone: str) -> None:
        """(Re)create a zone at the baseline; NS names point at this one server."""
        with contextlib.suppress(OSError):
            self.api("DELETE", f"/zones/{zone}")
        rrsets: dict[tuple[str, str], list[str]] = {}
        ttl = 300
        for line in zone_text(zone, (self.address, self.address)).splitlines():
            if line.startswith("$"):
                continue
            owner, rtype, *rest = line.split()
            name = zone if owner == "@" else (owner if owner.endswith(".") else f"{owner}.{zone}")
            content = " ".join(rest)
            if rtype == "MX" and not content.endswith("."):
                content = f"{content}.{zone}"
            rrsets.setdefault((name, rtype), []).append(content)
        self.api(
            "POST",
            "/zones",
            {
                "name": zone,
                "kind": "Native",
                "soa_edit_api": "INCREASE",
                "rrsets": [
                    {
                        "name": name,
                        "type": rtype,
                        "ttl": ttl,
                        "records": [{"content": c, "disabled": False} for c in contents],
                    }
                    for (name, rtype), contents in rrsets.items()
                ],
            },
        )
        self.api("PUT", f"/zones/{zone}/metadata/TSIG-ALLOW-DNSUPDATE", {"metadata": [TSIG_NAME]})
        self.api("PUT", f"/zones/{zone}/metadata/SOA-EDIT-DNSUPDATE", {"metadata": ["INCREASE"]})

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
