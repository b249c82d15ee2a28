"""The lab inventory (from a stand-in lab.json), pyinfra's JSON results, `mxctl deploy`
on inventories without any host (validation happens before pyinfra connects)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mxlab import inventory as labinv
from mxlab.deploying import LAB_INVENTORY
from mxlab.state import LabHost, LabState

from orchestrator.deploy import runner, spec
from tests.deploy.factories import make_ca

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabState:
    """A lab.json describing hosts that do not exist: enough to build the inventory."""
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    hosts = {
        name: LabHost(name, f"{name}.example.test", f"10.254.77.{n}", role, f"ns-{name}", "02:00")
        for name, n, role in [
            ("ns1", 11, "dns-primary"),
            ("mx1", 21, "mail"),
            ("mx2", 22, "mail"),
            ("sender", 31, "sender"),
        ]
    }
    lab = LabState(
        name="lab",
        subnet="10.254.77.0/24",
        bridge="br0",
        gateway="10.254.77.1",
        zones=["example.org", "example.test"],
        hosts=hosts,
        ssh_user="root",
        ssh_key=str(tmp_path / "id"),
        known_hosts=str(tmp_path / "known_hosts"),
        tsig_name="k",
        tsig_algorithm="hmac-sha256",
        tsig_secret_file=str(tmp_path / "tsig"),
        ca_cert=str(ca_cert),
        ca_key=str(ca_key),
    )
    (tmp_path / "lab.json").write_text(lab.to_json())
    monkeypatch.setenv("MXCTL_LAB_DIR", str(tmp_path))
    return lab


def test_lab_inventory_is_complete_and_stable(fake_lab: LabState, tmp_path: Path) -> None:
    first = labinv.build(fake_lab)
    assert [name for name, _ in first.mail] == ["mx1", "mx2"]
    assert [data["mail_role"] for _, data in first.mail] == ["primary", "standby"]
    assert first.mail_data["mail_domains"] == ["example.test", "example.org"]
    assert first.mail_data["mail_client_name"] == "mail.example.test"
    assert [name for name, _ in first.sender] == ["sender"]
    assert first.sender[0][1]["sender_mynetworks"] == ["127.0.0.0/8", "10.254.77.1/32"]
    mx1 = first.mail[0][1]
    assert mx1["ssh_strict_host_key_checking"] == "yes"
    assert mx1["ssh_known_hosts_file"] == fake_lab.known_hosts
    secrets = sorted((tmp_path / "secrets").iterdir())
    assert len(secrets) == 5
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in secrets)
    contents = {p: p.read_bytes() for p in [*secrets, *(tmp_path / "tls").iterdir()]}
    second = labinv.build(fake_lab)
    assert second == first
    assert {p: p.read_bytes() for p in contents} == contents  # nothing regenerated


def test_pyinfra_sees_the_lab_inventory_and_the_spec_fills_defaults(fake_lab: LabState) -> None:
    hosts = {h["name"]: h for h in runner.inventory_hosts(LAB_INVENTORY)}
    assert set(hosts) == {"mx1", "mx2", "sender"}
    assert "mail" in hosts["mx1"]["groups"]
    assert "mail_replication_port" not in hosts["mx1"]["data"]  # no group_data file needed
    pair = runner.preflight(LAB_INVENTORY)
    assert (pair.primary.fqdn, pair.standby.fqdn) == ("mx1.example.test", "mx2.example.test")
    assert pair.replication_port == spec.DEFAULTS["mail_replication_port"] == 12345


def test_first_deploy_record_is_kept(fake_lab: LabState) -> None:
    assert labinv.recorded_first_deploy() is None
    labinv.record_first_deploy(30.0, 28, 50)
    labinv.record_first_deploy(4.0, 28, 0)  # a later run never overwrites it
    record = labinv.recorded_first_deploy()
    assert record is not None and record["seconds"] == 30.0


def test_parse_pyinfra_json_results() -> None:
    payload = {
        "plan": [],
        "results": {
            "operations": [
                {
                    "name": "Postfix | Postfix main.cf",
                    "success": ["mx1"],
                    "no_change": ["mx2"],
                    "error": [],
                },
                {
                    "name": "Dovecot | Reload Dovecot",
                    "success": [],
                    "no_change": ["mx1", "mx2"],
                    "error": [],
                },
            ],
            "failed_hosts": [],
        },
    }
    operations, failed = runner.parse_results(json.dumps(payload))
    result = runner.RunResult(("pyinfra",), 0, 1.0, operations, failed, "")
    assert result.ok
    assert result.changed() == ["Postfix | Postfix main.cf"]
    assert result.changed("mx2") == []
    assert "2 operations" in result.summary()


def test_bare_install_detection() -> None:
    def op(name: str, changed: tuple[str, ...]) -> runner.OperationResult:
        return runner.OperationResult(name, changed, (), ())

    hosts = ("mx1", "mx2")
    everything = tuple(op(f"Unit | op {i}", hosts) for i in range(10))
    install = op("Base | Install packages", hosts)
    fresh = runner.RunResult((), 0, 30.0, (install, *everything), (), "")
    assert fresh.looks_like_bare_install(hosts)
    # someone else's apt run made the package check flap: one change, not a bare install
    rerun = runner.RunResult((), 0, 4.0, (install, *(op(o.name, ()) for o in everything)), (), "")
    assert not rerun.looks_like_bare_install(hosts)
    assert not runner.RunResult((), 0, 1.0, (), (), "").looks_like_bare_install(hosts)


def test_deploy_command_never_prompts() -> None:
    command = runner.deploy_command(
        "inventories/x.py", runner.MAIL_DEPLOY, data={"a": "1"}, limit=["mx1"]
    )
    assert command[-2:] == ["inventories/x.py", "mxctl_deploys.mailpair.apply"]
    assert {"--json", "-y"} <= set(command)
    assert command[command.index("--data") + 1] == "a=1"


def mxctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_mxctl_deploy_check_on_the_example_names_every_missing_secret() -> None:
    proc = mxctl("deploy", "-i", "inventories/example.py", "--check")
    assert proc.returncode == 2
    for field in (
        "mail_users[0].password: environment variable MXCTL_PASSWORD_ALICE",
        "mail_users[1].password: secret file /etc/mxctl/secrets/bob",
        "mail_replication_password",
        "mail_dkim_key",
        "mail[mx1.example.com].mail_tls_cert",
        "mail_backup.password: secret file /etc/mxctl/secrets/restic",
        "mail_backup.ssh_key: secret file /etc/mxctl/secrets/backup-ssh-key",
    ):
        assert field in proc.stderr, proc.stderr


def test_mxctl_deploy_check_on_the_lab_prints_the_dkim_record(fake_lab: LabState) -> None:
    proc = mxctl("lab", "deploy", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "inventory OK: mx1 primary (mx1.example.test), mx2 standby" in proc.stdout
    assert "mail._domainkey.example.test. 3600 IN TXT" in proc.stdout


def test_bad_inventory_stops_mxctl_before_any_connection(
    fake_lab: LabState, tmp_path: Path
) -> None:
    inventory = tmp_path / "bad.py"
    inventory.write_text(
        "from mxlab.inventory import build\n"
        "_lab = build()\n"
        "_lab.mail[1][1]['mail_role'] = 'primary'\n"
        "mail = (_lab.mail, _lab.mail_data)\n"
    )
    proc = mxctl("deploy", "-i", str(inventory))
    assert proc.returncode == 2
    assert "mail_role: two primary hosts (mx1, mx2)" in proc.stderr
    assert "Connecting" not in proc.stderr + proc.stdout
