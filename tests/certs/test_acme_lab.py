"""Lab acceptance (issue 17): from the running, deployed lab pair, `mxctl cert renew`
issues certificates from Pebble for each host's name and the client-facing name, answering
DNS-01 through the lab's BIND (rfc2136, TSIG, both authoritative servers checked), pushes
them to both hosts and reloads; both serve them on 25 (STARTTLS), 587 (STARTTLS) and 993,
verified against Pebble's root only, and Postfix and Dovecot were not restarted. Then a
crash failover: the new primary serves a valid certificate for the client name.

Pebble runs on the lab host `acme` (mxlab.acmehost), resolves challenges at ns1 and
issues under the root `mxctl lab up` fetched from it and every lab host trusts. At the end
of each test the deploy runs again, which puts the lab CA's certificates back (and
reloads), so later lab tests find the pair as they expect.
"""

from __future__ import annotations

import imaplib
import json
import shutil
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest
from mxlab import acmehost, control
from mxlab import lab as lab_module
from mxlab.controlled import ControlledLab, dump, mx_at, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailclient import Imaps, served_certificate, smtp_starttls
from mxlab.state import LabState
from mxlab.topology import host_spec

from orchestrator.cli.main import main
from orchestrator.deploy import runner
from orchestrator.errors import LabError
from tests.deploy.conftest import DeployedLab, deployed  # noqa: F401  (the fixture)
from tests.deploy.labhosts import ssh

pytestmark = pytest.mark.lab

CLIENT_NAME = "mail.example.test"
ALICE = "alice@example.test"
HOSTS = ("mx1", "mx2")
# The master processes' PIDs, which a restart changes and a reload keeps (postfix@- is a
# forking unit whose MainPID systemd reports as 0: read Postfix's own pid file).
MASTERS = {
    "postfix": "cat /var/spool/postfix/pid/master.pid",
    "dovecot": "systemctl show -p MainPID --value dovecot",
}


def _pebble_root(lab: LabState) -> str:
    """The root Pebble on `acme` issues under: the one `lab up` kept is the one it serves."""
    kept = Path(lab.extra["acme_root"]).read_bytes()
    assert acmehost.fetch_root(host_spec("acme"), Path(lab.ca_cert)) == kept
    return kept.decode()


def _config(lab: LabState, tmp_path: Path) -> Path:
    lab_config = lab_module.lab_json_path().parent / "mxctl.toml"
    path = tmp_path / "certs.toml"  # beside the harness's mxctl.toml, not over it
    path.write_text(
        lab_config.read_text() + acmehost.certs_section(lab, tmp_path / "acme", CLIENT_NAME)
    )
    return path


@pytest.fixture
def harness(deployed: DeployedLab, tmp_path: Path) -> Iterator[ControlledLab]:  # noqa: F811
    """The pair as lab tests expect it (unfenced, mx1 the MX; `make demo` leaves it failed
    over); afterwards the same, with the inventory's certificates back."""
    h = ControlledLab(deployed.lab, tmp_path, write_config(deployed.lab, tmp_path))
    h.restore()
    try:
        yield h
    finally:
        h.restore()
        _restore_lab_certificates()


def _restore_lab_certificates() -> None:
    # The lab inventory deploys what the lab's own store holds (a test filled it): empty
    # it, and the deploy puts the lab CA's certificates back.
    shutil.rmtree(acmehost.store_dir(), ignore_errors=True)
    restored = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    assert restored.ok, f"restoring the lab certificates failed: {restored.failed()}"


def _main_pids(lab: LabState) -> dict[tuple[str, str], str]:
    return {
        (host, unit): ssh(lab, host, command).strip()
        for host in HOSTS
        for unit, command in MASTERS.items()
    }


class ImapLoad:
    """IMAP sessions (TLS handshake, login, select, logout) back to back on both hosts,
    trusting the lab CA and Pebble's root, as a client that trusts both would. Handshake
    failures and failures later in a session are counted apart."""

    def __init__(self, pair: DeployedLab, context: ssl.SSLContext) -> None:
        self.pair, self.context = pair, context
        self.ok = 0
        self.handshake_failures: list[str] = []
        self.session_failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for host in HOSTS:
                try:
                    client = Imaps(self.pair.address(host), CLIENT_NAME, self.context)
                except imaplib.IMAP4.abort as exc:
                    # The handshake completed (wrap_socket returned), then the server
                    # closed before its greeting.
                    self.session_failures.append(f"{host}: greeting: {exc}")
                    continue
                except Exception as exc:  # TLS or TCP: every failure counts
                    self.handshake_failures.append(f"{host}: {type(exc).__name__}: {exc}")
                    continue
                try:
                    client.login(ALICE, self.pair.password(ALICE))
                    client.select("INBOX")
                    client.logout()
                    self.ok += 1
                except Exception as exc:
                    self.session_failures.append(f"{host}: {type(exc).__name__}: {exc}")

    def __enter__(self) -> ImapLoad:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_pebble_certificates_are_issued_installed_and_served_on_both_hosts(
    deployed: DeployedLab,  # noqa: F811
    harness: ControlledLab,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = deployed.lab
    root = _pebble_root(lab)
    before = _main_pids(lab)
    assert all(pid not in ("", "0") for pid in before.values()), before
    config = _config(lab, tmp_path)
    # Before: the hosts hold the inventory's certificates, this store nothing.
    code = main(["cert", "status", "--config", str(config), "--json"])
    states = [c["host"]["state"] for c in json.loads(capsys.readouterr().out)["certificates"]]
    assert code == 1 and all(s.startswith("differs from the store") for s in states), states

    code = main(["cert", "renew", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    results = json.loads(out)["results"]
    assert [(r["name"], r["outcome"]) for r in results] == [
        (lab.host(h).fqdn, "renewed") for h in HOSTS
    ]

    pebble_only = ssl.create_default_context(cadata=root)
    for host in HOSTS:
        address, fqdn = lab.host(host).address, lab.host(host).fqdn
        for name in (fqdn, CLIENT_NAME):
            for port in (25, 587):
                client = smtp_starttls(address, port, name, pebble_only, "ci.example.test")
                client.quit()
            cert = served_certificate(address, name, pebble_only)
            sans = {v for k, v in cert["subjectAltName"] if k == "DNS"}  # type: ignore[attr-defined]
            assert sans == {fqdn, CLIENT_NAME}
            assert "Pebble" in str(cert["issuer"])
    assert _main_pids(lab) == before  # reloaded, not restarted
    code = main(["cert", "status", "--config", str(config), "--json"])
    status = json.loads(capsys.readouterr().out)["certificates"]
    assert code == 0 and [c["host"]["state"] for c in status] == ["in sync", "in sync"]
    assert [c["host"]["host"] for c in status] == [lab.host(h).fqdn for h in HOSTS]

    # Renewal forced on the running pair under IMAP load: no failed handshake.
    both = ssl.create_default_context(cafile=lab.ca_cert)
    both.load_verify_locations(cadata=root)
    first = {r["name"]: r["installed"]["serial"] for r in results}
    with ImapLoad(deployed, both) as load:
        time.sleep(1)
        code = main(["cert", "renew", "--config", str(config), "--json", "--force"])
        time.sleep(1)
    out = capsys.readouterr().out
    assert code == 0, out
    renewed = {r["name"]: r["installed"]["serial"] for r in json.loads(out)["results"]}
    assert all(renewed[name] != serial for name, serial in first.items())
    print(
        f"forced renewal under IMAP load: {load.ok} sessions completed, "
        f"{len(load.handshake_failures)} failed TLS handshakes, "
        f"{len(load.session_failures)} sessions cut: {load.session_failures}"
    )
    assert load.handshake_failures == [], load.handshake_failures[:5]
    assert load.ok >= 10, f"only {load.ok} IMAP sessions during the renewal"
    # `doveadm reload` restarts Dovecot's auth process: a login whose authentication
    # is pending at that instant is aborted ("Auth server restarted ... aborting
    # auth", EOF at LOGIN; or at the greeting): at most the one session in flight on
    # each host at its reload (this client has one at a time); the client reconnects.
    # Never a failed handshake, never a logged-in session.
    assert len(load.session_failures) <= len(HOSTS), load.session_failures
    assert all(("greeting" in f or "LOGIN" in f) for f in load.session_failures)
    for host in HOSTS:
        address = lab.host(host).address
        cert = served_certificate(address, CLIENT_NAME, pebble_only)
        assert format(int(str(cert["serialNumber"]), 16), "x") == renewed[lab.host(host).fqdn]
    assert _main_pids(lab) == before


def test_after_a_crash_failover_the_new_primary_serves_an_acme_certificate_for_the_client_name(
    deployed: DeployedLab,  # noqa: F811
    harness: ControlledLab,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The controller's probes verify with the lab's bundle (lab CA and Pebble's root), so
    a standby serving Pebble's certificate counts as healthy and is promoted; a client that
    trusts Pebble's root alone then reaches the client name on the new primary."""
    lab = deployed.lab
    root = _pebble_root(lab)
    # This time the deploy installs them: issued into the lab's store, which the lab
    # inventory points mail_tls_cert/mail_tls_key at (as `make demo` does).
    config = tmp_path / "certs.toml"
    config.write_text(
        (lab_module.lab_json_path().parent / "mxctl.toml").read_text()
        + acmehost.certs_section(lab, acmehost.store_dir(), CLIENT_NAME)
    )
    h = harness
    code = main(["cert", "renew", "--no-install", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    assert result.ok, f"deploy failed: {result.failed()}\n{result.stderr[-3000:]}"
    pebble_only = ssl.create_default_context(cadata=root)
    for host in HOSTS:
        served = served_certificate(lab.host(host).address, CLIENT_NAME, pebble_only)
        assert "Pebble" in str(served["issuer"]), (host, served)
    h.start_witness()
    h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    control.fault("mx1", "kill")
    try:
        h.wait_status(lambda s: s["primary"] == "mx2.example.test", 60, "the failover")
    except LabError as exc:
        pytest.fail(f"{exc}\n{dump(h.journal_events())}")
    assert all(mx_at(ns) == ["10 mx2.example.test."] for ns in h.nameservers())
    mx2 = lab.host("mx2").address
    for ns in h.nameservers():  # the client name points at the new primary everywhere
        assert _a_record(ns, CLIENT_NAME) == [mx2], dump(h.journal_events())
    cert = served_certificate(mx2, CLIENT_NAME, pebble_only)
    assert "Pebble" in str(cert["issuer"])
    assert ("DNS", CLIENT_NAME) in cert["subjectAltName"]  # type: ignore[operator]
    client = smtp_starttls(mx2, 587, CLIENT_NAME, pebble_only, "ci.example.test")
    client.quit()
    with Imaps(mx2, CLIENT_NAME, pebble_only) as imap:
        imap.login(ALICE, deployed.password(ALICE))


def _a_record(nameserver: str, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    query.flags = dns.flags.Flag(0)
    reply = dns.query.udp(query, nameserver, timeout=2)
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)
