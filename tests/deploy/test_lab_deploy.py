"""Acceptance on the lab: deploying, re-deploying, reloading only what changed, refusing
bad input before any host is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mxlab import inventory as labinv
from mxlab.deploying import LAB_INVENTORY

from orchestrator.deploy import runner
from tests.deploy.conftest import LAB_DEPLOYS, DeployedLab
from tests.deploy.labhosts import lab_release, ssh

pytestmark = pytest.mark.lab

MAIL_HOSTS = ("mx1", "mx2")


def test_deploy_exits_zero(deployed: DeployedLab) -> None:
    assert deployed.first.returncode == 0
    assert deployed.first.ok
    assert len(deployed.first.operations) >= 25
    record = labinv.recorded_first_deploy()
    if record is not None:  # written when this lab's first deploy found bare hosts
        assert record["changed"] > 0


def test_second_run_changes_nothing(deployed: DeployedLab) -> None:
    second = deployed.second
    assert second.ok
    assert second.operations, "pyinfra reported no operations"
    for op in second.operations:
        assert not op.changed and not op.failed, f"{op.name} changed on {op.changed}"
        assert op.unchanged, f"{op.name} ran on no host"
    assert set(MAIL_HOSTS) <= {h for op in second.operations for h in op.unchanged}


def test_both_hosts_serve_everything(deployed: DeployedLab) -> None:
    for host in MAIL_HOSTS:
        postfix = lab_release(deployed.lab).postfix_unit
        active = ssh(deployed.lab, host, f"systemctl is-active {postfix} dovecot opendkim")
        assert active.split() == ["active"] * 3, host
        ports = ssh(deployed.lab, host, "ss -Hltn | awk '{print $4}'")
        for port in ("25", "587", "143", "993", "12345"):
            assert f"0.0.0.0:{port}" in ports.split(), (host, port)


@pytest.fixture
def restore_defaults(deployed: DeployedLab) -> Iterator[None]:
    yield
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOYS)
    assert result.ok, result.stderr[-2000:]


def _mail_changes(result: runner.RunResult) -> dict[str, list[str]]:
    """What changed on each mail host, named without the enclosing deploys ("Lab | Mail
    pair | "), which depend on whether the pair was deployed alone or with the lab."""
    return {
        host: [" | ".join(name.split(" | ")[-2:]) for name in result.changed(host)]
        for host in MAIL_HOSTS
    }


def test_postfix_variable_reloads_only_postfix(
    deployed: DeployedLab, restore_defaults: None
) -> None:
    before = ssh(deployed.lab, "mx1", "cat /run/dovecot/master.pid")
    result = runner.run_deploy(
        LAB_INVENTORY, LAB_DEPLOYS, data={"postfix_message_size_limit": "20971520"}
    )
    assert result.ok, result.stderr[-2000:]
    expected = ["Postfix | Postfix main.cf", "Postfix | Reload Postfix"]
    assert _mail_changes(result) == {"mx1": expected, "mx2": expected}
    assert result.changed("sender") == []
    for host in MAIL_HOSTS:
        assert ssh(deployed.lab, host, "postconf -h message_size_limit").strip() == "20971520"
    assert ssh(deployed.lab, "mx1", "cat /run/dovecot/master.pid") == before


def test_dovecot_variable_reloads_only_dovecot(
    deployed: DeployedLab, restore_defaults: None
) -> None:
    result = runner.run_deploy(
        LAB_INVENTORY, LAB_DEPLOYS, data={"dovecot_mail_max_userip_connections": "25"}
    )
    assert result.ok, result.stderr[-2000:]
    expected = ["Dovecot | Dovecot configuration", "Dovecot | Reload Dovecot"]
    assert _mail_changes(result) == {"mx1": expected, "mx2": expected}
    for host in MAIL_HOSTS:
        value = ssh(deployed.lab, host, "doveconf -h mail_max_userip_connections").strip()
        assert value == "25"


BAD_INVENTORIES = [
    (
        "two primaries",
        'mail[0][1][1]["mail_role"] = "primary"',
        "mail_role: two primary hosts",
    ),
    (
        "unknown role",
        'mail[0][1][1]["mail_role"] = "master"',
        "mail[mx2].mail_role: unknown role 'master'",
    ),
    (
        "missing user password",
        'mail[1]["mail_users"][0].pop("password")',
        "mail_users[0].password: missing",
    ),
    (
        "missing secret",
        'mail[1]["mail_replication_password"] = "env:MXCTL_TEST_UNSET_SECRET"',
        "mail_replication_password: environment variable MXCTL_TEST_UNSET_SECRET",
    ),
    (
        "invalid domain",
        'mail[1]["mail_domains"] = ["example.test", "example..org"]',
        "mail_domains[1]: 'example..org' is not a valid",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [pytest.param(c, m, id=i) for i, c, m in BAD_INVENTORIES]
)
def test_bad_input_stops_before_any_host(
    deployed: DeployedLab, tmp_path: Path, change: str, message: str
) -> None:
    """The real CLI (`pyinfra INVENTORY mxctl_deploys.mailpair.apply`) on a broken copy of the lab
    inventory: it stops with the field named, and no operation runs on any host."""
    inventory = tmp_path / "broken.py"
    inventory.write_text(
        "import copy\n"
        "from mxlab.inventory import build\n"
        "_lab = build()\n"
        "mail = copy.deepcopy((_lab.mail, _lab.mail_data))\n"
        f"{change}\n"
    )
    stamp = ssh(deployed.lab, "mx1", "stat -c %Y /etc/postfix/main.cf /etc/dovecot/dovecot.conf")
    result = runner.run_deploy(str(inventory), runner.MAIL_DEPLOY)
    assert result.returncode != 0
    assert not result.operations  # nothing was planned, let alone executed
    assert message in result.stderr, result.stderr[-2000:]
    assert "nothing was changed on any host" in result.stderr
    assert "Beginning operation run" not in result.stderr
    assert (
        ssh(deployed.lab, "mx1", "stat -c %Y /etc/postfix/main.cf /etc/dovecot/dovecot.conf")
        == stamp
    )


def test_no_secret_in_pyinfra_output(deployed: DeployedLab) -> None:
    output = " ".join(deployed.second.command) + deployed.second.stderr
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOYS, extra_args=["-vvv"])
    output += result.stderr
    for user in deployed.pair.users:
        assert user.password.reveal() not in output
    assert deployed.pair.replication_password.reveal() not in output
    key_body = deployed.pair.dkim_key.reveal().splitlines()[1]
    assert key_body not in output


REPLICA_CASES = [
    ("the deployed channel", "", "tcps:{peer}:12345", "ok"),
    (
        "a CA that did not sign the peer",
        # A real root that signed neither host (the system store may hold the lab's ACME
        # root, which signs the hosts' certificates after `make demo`).
        "-o ssl_client_ca_file=/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
        "tcps:{peer}:12345",
        "invalid SSL certificate",
    ),
    (
        "the peer by address, not by name",
        "",
        "tcps:{peer_ip}:12345",
        "doesn't match expected host name",
    ),
    (
        "a wrong doveadm password",
        "-o doveadm_password=not-the-password-at-all",
        "tcps:{peer}:12345",
        "authentication failed",
    ),
    ("plain TCP", "", "tcp:{peer}:12345", "disconnected before handshake"),
]


@pytest.mark.parametrize(
    ("options", "target", "expected"),
    [pytest.param(o, t, e, id=i) for i, o, t, e in REPLICA_CASES],
)
def test_replication_channel_is_authenticated_and_verified(
    deployed: DeployedLab, options: str, target: str, expected: str
) -> None:
    """One dsync run per case, as the replicator does it, from each host to its peer."""
    for host, peer in (("mx1", "mx2"), ("mx2", "mx1")):
        where = target.format(peer=f"{peer}.example.test", peer_ip=deployed.address(peer))
        output = ssh(
            deployed.lab,
            host,
            f"doveadm {options} sync -u probe@example.test {where} 2>&1; echo rc=$?",
        )
        if expected == "ok":
            assert output.strip() == "rc=0", (host, output)
        else:
            assert expected in output and "rc=0" not in output, (host, output)
