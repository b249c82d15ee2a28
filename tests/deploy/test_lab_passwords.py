"""Acceptance on the lab: password hashes are ARGON2ID that Dovecot 2.3.19 (libsodium) verifies
for IMAP and submission logins, legacy SHA512-CRYPT hashes keep working and become ARGON2ID
on the next password change, and a redeploy changes nothing."""

from __future__ import annotations

import imaplib
import shlex
import smtplib
from collections.abc import Iterator

import pytest
from mxlab.deploying import LAB_INVENTORY
from mxlab.mailclient import imap_starttls, smtp_starttls

from orchestrator.deploy import runner
from orchestrator.deploy.hostfiles import DOVECOT_USERS, parse_passwd_file
from tests.deploy.conftest import DeployedLab
from tests.deploy.labhosts import ssh

pytestmark = pytest.mark.lab

MAIL_HOSTS = ("mx1", "mx2")
ALICE = "alice@example.test"
BOB = "bob@example.org"
PROBE = "probe@example.test"
CLIENT_NAME = "mail.example.test"
USERS_OPERATION = "Users | Dovecot users (hashed passwords)"
ARGON2ID_PREFIX = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"


def imap_login_ok(deployed: DeployedLab, host: str, user: str, password: str) -> bool:
    client = imap_starttls(deployed.address(host), CLIENT_NAME, deployed.context)
    try:
        client.login(user, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        client.shutdown()
    return True


def submission_login_ok(deployed: DeployedLab, host: str, user: str, password: str) -> bool:
    with smtp_starttls(
        deployed.address(host), 587, CLIENT_NAME, deployed.context, "laptop.example.test"
    ) as smtp:
        try:
            smtp.login(user, password)
        except smtplib.SMTPAuthenticationError:
            return False
    return True


def stored_hashes(deployed: DeployedLab, host: str) -> dict[str, str]:
    return parse_passwd_file(ssh(deployed.lab, host, f"cat {DOVECOT_USERS}"))


def write_users_file(deployed: DeployedLab, host: str, text: str) -> None:
    # `cat >` keeps the file's owner and mode (root:dovecot 0640).
    ssh(deployed.lab, host, f"printf %s {shlex.quote(text)} > {DOVECOT_USERS}")


def deploy_mail() -> runner.RunResult:
    result = runner.run_deploy(LAB_INVENTORY, runner.MAIL_DEPLOY)
    assert result.ok, result.stderr[-2000:]
    return result


def assert_no_change(result: runner.RunResult) -> None:
    assert result.operations, "pyinfra reported no operations"
    assert result.changed() == [], result.changed()


@pytest.fixture
def users_files(deployed: DeployedLab) -> Iterator[dict[str, str]]:
    """The hosts' passwd-files as they were; put back afterwards."""
    saved = {host: ssh(deployed.lab, host, f"cat {DOVECOT_USERS}") for host in MAIL_HOSTS}
    yield saved
    for host, text in saved.items():
        ssh(deployed.lab, host, f"install -o root -g dovecot -m 640 /dev/null {DOVECOT_USERS}")
        write_users_file(deployed, host, text)
    assert_no_change(deploy_mail())


def test_new_hashes_are_argon2id_and_every_user_logs_in(
    deployed: DeployedLab, users_files: dict[str, str]
) -> None:
    # Hosts with no hashes yet, as on a first deploy: every hash is made now.
    for host in MAIL_HOSTS:
        ssh(deployed.lab, host, f"rm -f {DOVECOT_USERS}")
    result = deploy_mail()
    for host in MAIL_HOSTS:
        changed = [name.split("Mail pair | ", 1)[-1] for name in result.changed(host)]
        assert changed == [USERS_OPERATION], (host, changed)
        stored = stored_hashes(deployed, host)
        assert sorted(stored) == sorted(u.address for u in deployed.pair.users)
        assert PROBE in stored
        for user, hashed in stored.items():
            assert hashed.startswith(ARGON2ID_PREFIX), (host, user, hashed[:40])
            # Dovecot's own check of the hash (libsodium's crypto_pwhash_str_verify).
            password = shlex.quote(deployed.password(user))
            verdict = ssh(deployed.lab, host, f"doveadm pw -t {shlex.quote(hashed)} -p {password}")
            assert "(verified)" in verdict, (host, user, verdict)
        for user in stored:
            password = deployed.password(user)
            assert imap_login_ok(deployed, host, user, password), (host, user)
            assert submission_login_ok(deployed, host, user, password), (host, user)
        # A wrong password is refused (once per host: Dovecot delays each failure 2 s).
        wrong = deployed.password(PROBE) + "x"
        assert not imap_login_ok(deployed, host, PROBE, wrong), host
        assert not submission_login_ok(deployed, host, PROBE, wrong), host
    assert_no_change(deploy_mail())


def test_legacy_hash_works_until_the_password_changes(
    deployed: DeployedLab, users_files: dict[str, str]
) -> None:
    """A host deployed by an older mxctl (SHA512-CRYPT, made here by Dovecot's doveadm):
    alice's hash is of her current password, bob's of a password the inventory has since
    changed. The deploy keeps alice's hash and gives bob a new ARGON2ID one."""
    for host in MAIL_HOSTS:
        legacy = {
            user: ssh(
                deployed.lab, host, f"doveadm pw -s SHA512-CRYPT -p {shlex.quote(pw)}"
            ).strip()
            for user, pw in (
                (ALICE, deployed.password(ALICE)),
                (BOB, "bob's password before the change"),
            )
        }
        assert all(h.startswith("{SHA512-CRYPT}$6$") for h in legacy.values()), legacy
        probe_line = f"{PROBE}:{stored_hashes(deployed, host)[PROBE]}::::::"
        lines = [f"{user}:{hashed}::::::" for user, hashed in legacy.items()] + [probe_line]
        write_users_file(deployed, host, "\n".join(lines) + "\n")
        assert imap_login_ok(deployed, host, ALICE, deployed.password(ALICE)), host
        assert not imap_login_ok(deployed, host, BOB, deployed.password(BOB)), host

    result = deploy_mail()
    for host in MAIL_HOSTS:
        changed = [name.split("Mail pair | ", 1)[-1] for name in result.changed(host)]
        assert changed == [USERS_OPERATION], (host, changed)
        stored = stored_hashes(deployed, host)
        assert stored[ALICE].startswith("{SHA512-CRYPT}$6$")  # kept: it still verifies
        assert stored[BOB].startswith(ARGON2ID_PREFIX)  # re-hashed: the password changed
        for user in (ALICE, BOB, PROBE):
            password = deployed.password(user)
            assert imap_login_ok(deployed, host, user, password), (host, user)
            assert submission_login_ok(deployed, host, user, password), (host, user)
    assert_no_change(deploy_mail())
