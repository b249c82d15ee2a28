"""Lab acceptance (issue 17): from the running, deployed lab pair, `mxctl cert renew`
issues certificates from Pebble for each host's name and the client-facing name, answering
DNS-01 through the lab's BIND (rfc2136, TSIG, both authoritative servers checked), pushes
them to both hosts and reloads; both serve them on 25 (STARTTLS), 587 (STARTTLS) and 993,
verified against Pebble's root only, and Postfix and Dovecot were not restarted.

Pebble runs on the machine side of the lab (its ACME API on loopback, where the controller
is) and resolves challenges at ns1. At the end the deploy runs again, which puts the lab
CA's certificates back (and reloads), so later lab tests find the pair as they expect.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from mxlab import lab as lab_module
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailclient import smtp_starttls
from mxlab.standins.pebble import Pebble
from mxlab.state import LabState

from orchestrator.cli.main import main
from orchestrator.deploy import runner
from tests.deploy.conftest import DeployedLab, deployed  # noqa: F401  (the fixture)
from tests.deploy.labhosts import ssh

pytestmark = pytest.mark.lab

CLIENT_NAME = "mail.example.test"
HOSTS = ("mx1", "mx2")
# The master processes' PIDs, which a restart changes and a reload keeps (postfix@- is a
# forking unit whose MainPID systemd reports as 0: read Postfix's own pid file).
MASTERS = {
    "postfix": "cat /var/spool/postfix/pid/master.pid",
    "dovecot": "systemctl show -p MainPID --value dovecot",
}


@pytest.fixture(scope="module")
def lab_pebble(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    ns1 = lab.host("ns1").address
    server = Pebble(tmp_path_factory.mktemp("lab-pebble"), f"{ns1}:53")
    try:
        yield server.start()
    finally:
        server.stop()


def _config(lab: LabState, pebble: Pebble, tmp_path: Path) -> Path:
    lab_config = lab_module.lab_json_path().parent / "mxctl.toml"
    certificates = "\n".join(
        f'"{lab.host(h).fqdn}" = ["{lab.host(h).fqdn}", "{CLIENT_NAME}"]' for h in HOSTS
    )
    path = tmp_path / "mxctl.toml"
    path.write_text(
        lab_config.read_text()
        + f"""
[certs]
directory_url = "{pebble.directory_url}"
account_key = "{tmp_path}/acme/account.key"
ca_bundle = "{pebble.listener_ca}"
store = "{tmp_path}/tls"
attempts = 2
retry_wait = 5

[certs.certificates]
{certificates}
"""
    )
    return path


def _main_pids(lab: LabState) -> dict[tuple[str, str], str]:
    return {
        (host, unit): ssh(lab, host, command).strip()
        for host in HOSTS
        for unit, command in MASTERS.items()
    }


def _served_on_993(address: str, name: str, context: ssl.SSLContext) -> dict[str, object]:
    raw = socket.create_connection((address, 993), timeout=10)
    with context.wrap_socket(raw, server_hostname=name) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        return dict(cert)


def test_pebble_certificates_are_issued_installed_and_served_on_both_hosts(
    deployed: DeployedLab,  # noqa: F811
    lab_pebble: Pebble,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = deployed.lab
    before = _main_pids(lab)
    assert all(pid not in ("", "0") for pid in before.values()), before
    config = _config(lab, lab_pebble, tmp_path)
    try:
        code = main(["cert", "renew", "--config", str(config), "--json"])
        out = capsys.readouterr().out
        assert code == 0, out
        results = json.loads(out)["results"]
        assert [(r["name"], r["outcome"]) for r in results] == [
            (lab.host(h).fqdn, "renewed") for h in HOSTS
        ]

        pebble_only = ssl.create_default_context(cadata=lab_pebble.root_pem().decode())
        for host in HOSTS:
            address, fqdn = lab.host(host).address, lab.host(host).fqdn
            for name in (fqdn, CLIENT_NAME):
                for port in (25, 587):
                    client = smtp_starttls(address, port, name, pebble_only, "ci.example.test")
                    client.quit()
                cert = _served_on_993(address, name, pebble_only)
                sans = {v for k, v in cert["subjectAltName"] if k == "DNS"}  # type: ignore[attr-defined]
                assert sans == {fqdn, CLIENT_NAME}
                assert "Pebble" in str(cert["issuer"])
        assert _main_pids(lab) == before  # reloaded, not restarted
    finally:
        restored = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
        assert restored.ok, f"restoring the lab certificates failed: {restored.failed()}"
