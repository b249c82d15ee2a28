"""What the hosts get, rendered without a host: templates, passwd-file, secret files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest

from orchestrator.deploy import cryptpw
from orchestrator.deploy.hostfiles import (
    dovecot_secrets_conf,
    parse_passwd_file,
    passwd_file,
    template_vars,
)
from orchestrator.deploy.spec import MailPair, load_pair

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def render(name: str, variables: dict[str, Any]) -> str:
    # The same Jinja settings deploys/common.py hands pyinfra's files.template.
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string((TEMPLATES / name).read_text()).render(**variables)


@pytest.fixture
def pair(inventory: dict[str, dict[str, Any]]) -> MailPair:
    return load_pair(inventory, environ={})


def settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")) and " = " in line:
            key, _, value = line.partition(" = ")
            out[key.strip()] = value.strip()
    return out


def test_postfix_main_cf_is_no_open_relay(pair: MailPair) -> None:
    main = settings(render("postfix/main.cf.j2", template_vars(pair, "mx1")))
    assert main["myhostname"] == "mx1.example.com"
    assert main["mynetworks"] == "127.0.0.0/8 [::1]/128"
    assert main["smtpd_relay_restrictions"].endswith("reject_unauth_destination")
    assert main["virtual_mailbox_domains"] == "example.com, example.org"
    assert main["virtual_transport"] == "lmtp:unix:private/dovecot-lmtp"
    assert main["maillog_file"] == "/var/log/postfix.log"
    assert main["smtpd_tls_security_level"] == "may"
    assert main["smtpd_sasl_auth_enable"] == "no"  # AUTH only on submission
    assert main["message_size_limit"] == "52428800"
    assert main["smtpd_milters"] == "inet:127.0.0.1:8891"


def test_submission_requires_tls_and_auth(pair: MailPair) -> None:
    master = render("postfix/master.cf.j2", {**template_vars(pair, "mx1"), "submission": True})
    block = master.split("submission inet", 1)[1].split("\npickup", 1)[0]
    for option in (
        "smtpd_tls_security_level=encrypt",
        "smtpd_sasl_auth_enable=yes",
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
        "smtpd_sender_restrictions=reject_sender_login_mismatch",
        "milter_macro_daemon_name=ORIGINATING",
    ):
        assert f"-o {option}" in block
    assert "postlog   unix-dgram" in master
    # nothing chrooted: Dovecot's sockets are found under the queue directory
    for line in master.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[1] in ("inet", "unix", "unix-dgram"):
            assert fields[4] == "n", line


def test_sender_master_cf_has_no_submission() -> None:
    master = render("postfix/master.cf.j2", {"submission": False})
    assert "submission" not in master.split("chroot", 1)[1]


def test_dovecot_conf(pair: MailPair) -> None:
    conf = render("dovecot/dovecot.conf.j2", template_vars(pair, "mx2"))
    values = settings(conf)
    assert values["mail_location"] == "sdbox:~/mail"
    assert values["ssl"] == "required"
    assert values["ssl_cert"] == "</etc/mxctl/tls/mail.crt"
    assert values["protocols"] == "imap lmtp"
    assert values["log_path"] == "/var/log/dovecot.log"
    assert "maildir" not in conf.lower().replace("not maildir", "")
    assert "port = 993" in conf and "port = 143" in conf
    assert "/var/spool/postfix/private/dovecot-lmtp" in conf
    assert "/var/spool/postfix/private/auth" in conf
    assert "!include_try /etc/dovecot/mxctl-replication.conf" in conf


def test_replication_points_at_the_peer_over_tls(pair: MailPair) -> None:
    for me, peer in (("mx1", "mx2"), ("mx2", "mx1")):
        conf = render("dovecot/replication.conf.j2", template_vars(pair, me))
        assert f"mail_replica = tcps:{peer}.example.com:12345" in conf
        assert "doveadm_port = 12345" in conf
        assert "port = 12345\n    ssl = yes" in conf
        assert "mail_plugins = $mail_plugins notify replication" in conf
        assert "replication_sync_timeout =" not in conf  # panics on Debian 12's 2.3.19
        assert "doveadm_password" not in settings(conf)  # only in the 0600 secrets file
        assert settings(conf)["ssl_client_ca_dir"] == "/etc/ssl/certs"  # no CA named


def test_replication_verifies_the_peer_with_the_inventory_ca(
    inventory: dict[str, dict[str, Any]],
) -> None:
    ca = str(Path(inventory["mx1"]["mail_tls_cert"]).parent.parent / "ca" / "ca.crt")
    for data in inventory.values():
        data["mail_tls_ca"] = ca
    pair = load_pair(inventory, environ={})
    assert pair.tls_ca == Path(ca)
    conf = render("dovecot/replication.conf.j2", template_vars(pair, "mx1"))
    assert settings(conf)["ssl_client_ca_file"] == "/etc/mxctl/tls/peer-ca.pem"
    assert "ssl_client_ca_dir" not in conf


def test_opendkim_signs_every_domain_with_one_key(pair: MailPair) -> None:
    conf = render("opendkim/opendkim.conf.j2", template_vars(pair, "mx1"))
    assert "Domain                  example.com,example.org" in conf
    assert "KeyFile                 /etc/dkimkeys/mail.private" in conf
    assert "Socket                  inet:8891@127.0.0.1" in conf
    assert "MTA                     ORIGINATING" in conf


def test_maps_list_every_mailbox(pair: MailPair) -> None:
    variables = template_vars(pair, "mx1")
    vmailbox = render("postfix/vmailbox.j2", variables)
    assert [line.split()[0] for line in vmailbox.splitlines() if not line.startswith("#")] == [
        "alice@example.com",
        "bob@example.org",
        "probe@example.com",
    ]
    assert "postmaster@example.com alice@example.com" in render("postfix/virtual.j2", variables)
    logins = render("postfix/sender_login.j2", variables)
    assert "alice@example.com alice@example.com" in logins
    assert "postmaster@example.com alice@example.com" in logins


def test_both_hosts_get_the_same_configuration_but_names(pair: MailPair) -> None:
    for name in (
        "postfix/main.cf.j2",
        "dovecot/dovecot.conf.j2",
        "dovecot/replication.conf.j2",
        "opendkim/opendkim.conf.j2",
        "postfix/vmailbox.j2",
    ):
        one = render(name, {**template_vars(pair, "mx1"), "submission": True})
        two = render(name, {**template_vars(pair, "mx2"), "submission": True})
        swapped = two.replace("mx2.", "@@.").replace("mx1.", "mx2.").replace("@@.", "mx1.")
        assert swapped == one, name


def test_passwd_file_hashes_and_is_stable(pair: MailPair) -> None:
    first = passwd_file(pair, {})
    assert "a" * 20 not in first
    lines = [line for line in first.splitlines() if not line.startswith("#")]
    assert [line.split(":")[0] for line in lines] == [
        "alice@example.com",
        "bob@example.org",
        "probe@example.com",
    ]
    assert all(line.endswith("::::::") and ":{ARGON2ID}$argon2id$" in line for line in lines)
    current = parse_passwd_file(first)
    assert cryptpw.verify("a" * 20, current["alice@example.com"])
    # Re-run against the host's current file: identical bytes, nothing to upload.
    assert passwd_file(pair, current) == first
    # A changed password gets a new hash; the others keep theirs.
    current["bob@example.org"] = cryptpw.argon2id("old password")
    again = parse_passwd_file(passwd_file(pair, current))
    assert again["alice@example.com"] == current["alice@example.com"]
    assert cryptpw.verify("b" * 20, again["bob@example.org"])


# `openssl passwd -6 -salt legacysalt PASSWORD`: SHA512-CRYPT lines as an older mxctl wrote them.
LEGACY_ALICE = (  # of "a" * 20, her current password
    "{SHA512-CRYPT}$6$legacysalt$"
    "OMGcIXKSarnqNUqvJGGVq34.S/M5Jas8svRz7wwaol6Z.mp72lQN.CQ.3rYHdsTGCZObMBhhOHL4.lR3uwS38."
)
LEGACY_BOB_OLD = (  # of "bob's old password"
    "{SHA512-CRYPT}$6$legacysalt$"
    "8jaSCJ1oDSuJSXB89GNKViz2goZTtCzvxKf.kKwp2ndQ75zxFmhcXPngwAyucpRQ6vPthX8A9jws1.vAet.Ju1"
)


def test_legacy_hashes_kept_until_the_password_changes(pair: MailPair) -> None:
    """A host deployed by an older mxctl: alice's SHA512-CRYPT hash of her current password
    stays byte for byte; bob's, of a password since changed, becomes ARGON2ID."""
    assert cryptpw.verify("a" * 20, LEGACY_ALICE)
    assert not cryptpw.verify("b" * 20, LEGACY_BOB_OLD)
    current = {"alice@example.com": LEGACY_ALICE, "bob@example.org": LEGACY_BOB_OLD}
    written = passwd_file(pair, current)
    assert f"alice@example.com:{LEGACY_ALICE}::::::" in written.splitlines()
    stored = parse_passwd_file(written)
    assert stored["bob@example.org"].startswith("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$")
    assert cryptpw.verify("b" * 20, stored["bob@example.org"])
    assert passwd_file(pair, stored) == written  # and then nothing more to change


def test_dovecot_secrets_conf(pair: MailPair) -> None:
    assert f'doveadm_password = "{"d" * 24}"' in dovecot_secrets_conf(pair)
