"""Real etcd members on loopback for the cluster tests and benches (Debian's etcd-server).

Each member gets free ports and a data directory under the test's temporary directory;
`stop` kills one (SIGKILL: no goodbye to its peers), `start` brings it back on its data.
A missing etcd binary fails the test (apt package etcd-server, .ci/host-packages.txt).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orchestrator.cluster.etcd import TlsFiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    scheme: str = "http"
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    root: Path
    size: int
    # TLS for clients: the server's files; `client_tls` is what a client presents.
    server_tls: TlsFiles | None = None
    client_tls: TlsFiles | None = None
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        binary = shutil.which("etcd")
        assert binary, "etcd not found: apt-get install etcd-server (.ci/host-packages.txt)"
        self.binary = binary
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            name = f"e{i}"
            scheme = "https" if self.server_tls else "http"
            log = self.root / f"{name}.log"
            self.members.append(
                Member(name, free_port(), free_port(), self.root / name, log, scheme)
            )

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, index: int) -> None:
        member = self.members[index]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        argv = [
            self.binary, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.endpoint, "--advertise-client-urls", member.endpoint,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"mxctl-test-{self.root.name}",
            # etcd's defaults (100 ms heartbeat, 1 s election timeout), said out loud.
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ]  # fmt: skip
        if self.server_tls is not None:
            tls = self.server_tls
            argv += ["--cert-file", str(tls.cert), "--key-file", str(tls.key),
                     "--trusted-ca-file", str(tls.ca), "--client-cert-auth"]  # fmt: skip
        with member.log.open("ab") as log:
            member.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, index: int) -> None:
        process = self.members[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        self.members[index].process = None

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {m.endpoint for m in self.members if m.process is not None}
        client = self.client_tls
        verify = client.context() if client else True
        while pending and time.monotonic() < deadline:
            for endpoint in list(pending):
                try:
                    reply = httpx.get(f"{endpoint}/health", timeout=1.0, verify=verify)
                    if reply.status_code == 200 and reply.json().get("health") == "true":
                        pending.discard(endpoint)
                except (httpx.HTTPError, ValueError):
                    pass
            time.sleep(0.1)
        logs = "\n".join(m.log.read_text()[-600:] for m in self.members if m.log.exists())
        assert not pending, f"etcd members not healthy in {timeout} s: {pending}\n{logs}"

    def close(self) -> None:
        for i in range(self.size):
            self.stop(i)
