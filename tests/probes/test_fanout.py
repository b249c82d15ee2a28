"""ProbePool: a cycle cut into shards over worker processes, results in job order."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from mxlab.standins.certs import make_authority, server_context
from mxlab.standins.mailservers import PASSWORD, USER, Behaviour, serve

from orchestrator.config.secrets import Secret
from orchestrator.probes.fanout import ProbeJob, ProbePool
from orchestrator.probes.result import ErrorClass
from orchestrator.probes.settings import MailHostTarget, Ports, ProbeSettings, ProbeUser


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_shards_run_in_workers_and_results_keep_job_order(tmp_path: Path) -> None:
    authority = make_authority()
    ca = authority.write(tmp_path / "ca.pem")
    behaviour = Behaviour(tls=server_context(authority, ("mx.test",), tmp_path))
    refused_port = _closed_port()

    def job(i: int, port: int) -> ProbeJob:
        settings = ProbeSettings(
            hosts=(),
            client_name="mx.test",
            probe_user=ProbeUser(USER, Secret(PASSWORD)),
            helo_name="probe.test",
            ca_file=ca,
            ports=Ports(smtp=port),
        )
        return ProbeJob("smtp", settings, MailHostTarget(f"t{i}", "mx.test", "127.0.0.1", "x"))

    async def run() -> list[tuple[str, bool, ErrorClass | None]]:
        async with serve("smtp", behaviour) as port:
            # Every third target refuses: the pattern must survive sharding and merging.
            jobs = [job(i, refused_port if i % 3 == 0 else port) for i in range(12)]
            with ProbePool(workers=2) as pool:
                results = await pool.run(jobs)
        return [(r.target, r.ok, r.error) for r in results]

    results = asyncio.run(run())
    assert [t for t, _, _ in results] == [f"t{i}" for i in range(12)]
    for i, (_, ok, error) in enumerate(results):
        assert (ok, error) == ((False, ErrorClass.REFUSED) if i % 3 == 0 else (True, None))
