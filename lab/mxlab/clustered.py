"""The controller cluster on the lab's controller hosts, for the cluster tests and benches.

ctl1..ctl3 each run an etcd member and `mxctl watch` (installed by mxctl_deploys.controller
from inventories/lab_cluster.py). This harness starts and stops the controllers as
systemd services on their hosts, reads each one's /status over HTTP and its journal from
its root filesystem, and puts the cluster back (controllers stopped, the cluster's state
and run records and every journal wiped) between tests.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mxlab import control, controllerhosts
from mxlab import lab as lab_ops
from mxlab.controller_config import API_PORT
from mxlab.deploying import LAB_CLUSTER_INVENTORY
from mxlab.state import LabState, state_dir
from orchestrator.cluster.etcd import EtcdClient, EtcdUnavailable, TlsFiles
from orchestrator.cluster.leadership import ClusterKeys
from orchestrator.controller.journal import Event, Journal
from orchestrator.deploy import runner
from orchestrator.deploy.tlscerts import issue_lab_cert
from orchestrator.errors import LabError

NAMES = controllerhosts.NAMES
JOURNAL = "var/lib/mxctl/journal.db"
# Restart=always would bring a SIGKILLed controller back after 2 s, racing the others for
# the lease it just lost; a killed controller stays dead here, as a dead machine's would.
NO_RESTART_DROPIN = "/run/systemd/system/mxctl-watch.service.d/lab-no-restart.conf"


def install() -> LabState:
    """Controller hosts up and the cluster deployed (seconds when it already is); the
    lab's state with them."""
    lab = controllerhosts.up()
    result = runner.run_deploy(LAB_CLUSTER_INVENTORY, runner.CONTROLLER_DEPLOY, limit=NAMES)
    if not result.ok:
        raise LabError(f"cluster deploy failed: {result.failed()}\n{result.stderr[-3000:]}")
    return lab


def _systemctl(name: str, *args: str) -> str:
    proc = control.exec_in(name, ["systemctl", *args], capture=True)
    if proc.returncode != 0:
        raise LabError(f"{name}: systemctl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class ClusterLab:
    lab: LabState

    def address(self, name: str) -> str:
        return self.lab.host(name).address

    # -- processes ----------------------------------------------------------------------
    def start(self, names: tuple[str, ...] = NAMES) -> None:
        for name in names:
            control.exec_in(name, ["rm", "-f", NO_RESTART_DROPIN], capture=True)
            _systemctl(name, "daemon-reload")
            _systemctl(name, "start", "etcd", "mxctl-watch")

    def stop(self, names: tuple[str, ...] = NAMES) -> None:
        for name in names:
            _systemctl(name, "stop", "mxctl-watch")

    def kill(self, name: str) -> None:
        """SIGKILL the controller (no lease revoked, no goodbye); it stays dead."""
        dropin = f"mkdir -p {Path(NO_RESTART_DROPIN).parent} && " + (
            f"printf '[Service]\\nRestart=no\\n' > {NO_RESTART_DROPIN}"
        )
        control.exec_in(name, ["sh", "-c", dropin], capture=True)
        _systemctl(name, "daemon-reload")
        _systemctl(name, "kill", "--signal=SIGKILL", "mxctl-watch")

    def stop_etcd(self, name: str) -> None:
        _systemctl(name, "stop", "etcd")

    # -- what they say ------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        reply = httpx.get(f"http://{self.address(name)}:{API_PORT}/status", timeout=1.5)
        return dict(reply.json())

    def statuses(self, names: tuple[str, ...] = NAMES) -> dict[str, dict[str, Any]]:
        found = {}
        for name in names:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                found[name] = self.status(name)
        return found

    def leaders(self, names: tuple[str, ...] = NAMES) -> dict[str, int]:
        """Controller -> term, for every one that says it leads and may act."""
        return {
            name: int(s["cluster"]["term"])
            for name, s in self.statuses(names).items()
            if s.get("cluster", {}).get("role") == "leader"
        }

    def wait_leader(
        self, timeout: float, names: tuple[str, ...] = NAMES, after_term: int = 0
    ) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {n: t for n, t in self.leaders(names).items() if t > after_term}
            if len(found) == 1:
                return next(iter(found.items()))
            time.sleep(0.05)
        raise LabError(f"no single leader among {names} in {timeout} s: {self.statuses(names)}")

    def journal_events(self, name: str) -> list[Event]:
        path = state_dir() / "hosts" / name / "root" / JOURNAL
        if not path.exists():
            return []
        journal = Journal(path)
        try:
            return journal.events(limit=10_000)
        finally:
            journal.close()

    # -- etcd from the machine ----------------------------------------------------------
    def etcd(self) -> EtcdClient:
        """A client of the cluster's etcd with a lab-CA certificate for the machine."""
        cert, key = issue_lab_cert(
            Path(self.lab.ca_cert), Path(self.lab.ca_key), (self.lab.gateway,),
            state_dir() / "etcd-tls",
        )  # fmt: skip
        endpoints = [f"https://{self.address(n)}:2379" for n in NAMES]
        return EtcdClient(endpoints, tls=TlsFiles(Path(self.lab.ca_cert), cert, key))

    def reset(self) -> None:
        """Every controller stopped, etcd members running, the cluster's shared state and
        run forgotten, every journal wiped: the next start is a cluster's first."""
        controllerhosts.heal_controller_cuts()  # whatever a test cut, from both sides
        for name in NAMES:
            control.fault(name, "thaw")
            control.fault(name, "link-up")
            if lab_ops.nspawn_pid(name) is None:
                control.fault(name, "up")
        for name in NAMES:
            control.exec_in(name, ["rm", "-f", NO_RESTART_DROPIN], capture=True)
            _systemctl(name, "daemon-reload")
            _systemctl(name, "stop", "mxctl-watch")
            _systemctl(name, "start", "etcd")
        keys = ClusterKeys(self.lab.name)
        client = self.etcd()
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    for key in (keys.state, keys.run, keys.leader):
                        client.delete(key)
                    break
                except EtcdUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            client.close()
        for name in NAMES:
            control.exec_in(name, ["sh", "-c", f"rm -f /{JOURNAL}*"], capture=True)
