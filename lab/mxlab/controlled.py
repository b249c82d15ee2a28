"""A controller and a witness running against the lab, and the way to put the lab back.

Used by the demo, the controller's lab tests and bench/failover.py.

The controller runs on the machine (its vantage point is the machine's own address on the
lab bridge); the witness runs inside `sender`'s network namespace. Both are the `mxctl`
console script, started as processes exactly as an operator would start them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import httpx

from mxlab import control
from mxlab import lab as lab_ops
from mxlab.control import MACHINE
from mxlab.controller_config import API_PORT
from mxlab.state import LabState, state_dir
from orchestrator.config import MxctlConfig, load_config
from orchestrator.controller import fencing, mailboxes
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.journal import Event, Journal
from orchestrator.controller.observe import client_tls
from orchestrator.deploy.hostfiles import REPLICATION_RESYNC
from orchestrator.dns.factory import make_provider
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.errors import LabError, MxctlError
from orchestrator.remote import RemoteError, SshTarget

MXCTL = str(Path(sys.executable).with_name("mxctl"))
MAIL_HOSTS = ("mx1", "mx2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(lab: LabState, directory: Path, **policy: float) -> Path:
    text = (state_dir() / "mxctl.toml").read_text()
    text = re.sub(r"(?m)^state_dir = .*$", f'state_dir = "{directory / "state"}"', text)
    text = re.sub(rf"(?m)^port = {API_PORT}$", f"port = {free_port()}", text)
    for key, value in policy.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    path = directory / "mxctl.toml"
    path.write_text(text)
    return path


def mx_at(address: str, zone: str = "example.test") -> list[str]:
    query = dns.message.make_query(zone, "MX")
    query.flags = dns.flags.Flag(0)
    reply = dns.query.udp(query, address, timeout=1)
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def serial_at(address: str, zone: str = "example.test") -> int:
    reply = dns.query.udp(dns.message.make_query(zone, "SOA"), address, timeout=1)
    return int(reply.answer[0][0].serial)


@dataclass
class ControlledLab:
    lab: LabState
    directory: Path
    config_path: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _config: tuple[int, MxctlConfig] | None = field(default=None, repr=False)

    @property
    def config(self) -> MxctlConfig:
        # Loaded again only when the file changed (tests edit it before starting the
        # controller), not at every status poll.
        stamp = self.config_path.stat().st_mtime_ns
        if self._config is None or self._config[0] != stamp:
            self._config = (stamp, load_config(self.config_path))
        return self._config[1]

    def start_witness(self) -> None:
        sender = self.lab.host("sender")
        log = (self.directory / "witness.log").open("ab")
        self.processes["witness"] = subprocess.Popen(
            ["ip", "netns", "exec", sender.netns, MXCTL, "witness", "--name", "sender",
             "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_http(f"https://{sender.address}:8427/health", "witness")

    def start_controller(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.directory / "controller.log").open("ab")
        proc = subprocess.Popen(
            [MXCTL, "-v", "watch", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.processes["controller"] = proc
        self._wait_http(f"http://127.0.0.1:{self.config.api.port}/health", "controller")
        return proc

    def stop(self, name: str) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_http(self, url: str, what: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                reply = httpx.get(url, timeout=0.5, verify=client_tls(self.lab.ca_cert))
                if reply.status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise LabError(f"{what} did not start: see {self.directory}")

    def status(self) -> dict[str, Any]:
        reply = httpx.get(f"http://127.0.0.1:{self.config.api.port}/status", timeout=2)
        return dict(reply.json())

    def wait_status(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = self.status()
                if predicate(status):
                    return status
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise LabError(f"timed out waiting for {what}; last: {self.status()}")

    def journal_events(self) -> list[Event]:
        journal = Journal(self.config.pair.state_dir / "journal.db")
        try:
            return journal.events(limit=10_000)
        finally:
            journal.close()

    def nameservers(self) -> list[str]:
        return [ns.address for ns in self.lab.nameservers()]

    def restore(self) -> None:
        """Put the lab back as the tests found it: hosts up and serving, mx1 the MX with mx2
        as backup MX, and the outside world's cache knowing that (a steady state)."""
        for name in list(self.processes):
            self.stop(name)
        for host in MAIL_HOSTS:
            control.fault(host, "thaw")
            control.fault(host, "link-up")
            control.fault(host, "heal", MACHINE)
            if lab_ops.nspawn_pid(host) is None:
                control.fault(host, "up")
            control.fault(host, "can-act")
        control.fault("mx1", "heal", "mx2")
        control.fault("ns2", "unlag")
        control.exec_in("ns1", ["systemctl", "start", "named"], capture=True)
        config = self.config
        for host in MAIL_HOSTS:
            target = ssh_target(config, f"{host}.example.test")
            for _ in range(20):
                try:
                    fencing.unfence(target)
                    break
                except RemoteError:
                    time.sleep(0.5)
            control.exec_in(host, ["systemctl", "start", "postfix", "dovecot"], capture=True)
        provider = make_provider(config.dns)
        try:
            plan = build_plan(config.dns, provider, "mx1.example.test", backup="mx2.example.test")
            apply_plan(plan, config.dns, provider)
        finally:
            provider.close()
        control.flush_resolver_cache()
        # The remote MTA's in-memory view too: after an earlier test left every MX of a
        # domain unreachable, Postfix's queue manager throttles that destination and
        # defers new mail to it for minutes. A reload forgets that (nothing is flushed:
        # mail it already deferred stays deferred, on its own retry schedule).
        control.exec_in("sender", ["postfix", "reload"], capture=True)
        self.converge_pair()

    def converge_pair(self, timeout: float = 120.0) -> None:
        converge_mail_pair(
            [ssh_target(self.config, f"{h}.example.test") for h in MAIL_HOSTS], timeout
        )


def converge_mail_pair(targets: list[SshTarget], timeout: float = 120.0) -> None:
    """Both hosts hold the same mailboxes before a test starts: stuck replication
    sessions (Dovecot 2.3's two-way lock-up, or a backup's staging holding a lock) are
    ended and every user synced again, until each mailbox matches on both hosts."""
    deadline = time.monotonic() + timeout
    problems: list[str] = ["not compared yet"]
    rounds = 0
    while problems and time.monotonic() < deadline:
        for target in targets:
            with contextlib.suppress(MxctlError):
                mailboxes.kill_stuck_sessions(target)
        # One host per round, taking turns: both at once is what locks Dovecot 2.3's
        # replication up, and in a mixed 2.3/2.4 pair one direction may not start a sync.
        starter = targets[rounds % len(targets)].name.split(".")[0]
        control.exec_in(starter, ["sh", "-c", REPLICATION_RESYNC], capture=True)
        rounds += 1
        time.sleep(2)
        try:
            one, two = (mailboxes.mailbox_states(t) for t in targets)
        except MxctlError as exc:
            problems = [str(exc)]
            continue
        problems = mailboxes.behind(one, two) + mailboxes.behind(two, one)
    if problems:
        raise LabError(f"the pair did not converge in {timeout:.0f} s: {problems[:5]}")


def dump(events: list[Event]) -> str:
    return "\n".join(
        f"{e.at} {e.kind} {e.subject} {e.status} {e.reason} {json.dumps(e.evidence)[:200]}"
        for e in events
    )
