"""What each mail host gets, computed on the deploying machine from the validated pair.

`template_vars` feeds the templates in templates/ (no secrets in it). The files that carry
secrets (Dovecot's passwd-file, the doveadm password, the DKIM key) are rendered here into
strings the deploy uploads without echoing: passwords arrive already hashed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.deploy import cryptpw
from orchestrator.deploy.release import SUPPORTED, MailRelease
from orchestrator.deploy.spec import MailPair

TLS_DIR = "/etc/mxctl/tls"
TLS_CERT = f"{TLS_DIR}/mail.crt"
TLS_KEY = f"{TLS_DIR}/mail.key"
# Postfix's copy: the key followed by its chain in ONE file (smtpd_tls_chain_files), so a
# renewal replaces both with one rename and no smtpd can start on a mismatched pair.
TLS_CHAIN = f"{TLS_DIR}/mail-chain.pem"
TLS_PEER_CA = f"{TLS_DIR}/peer-ca.pem"
DOVECOT_USERS = "/etc/dovecot/users"
DOVECOT_SECRETS = "/etc/dovecot/mxctl-secrets.conf"
DKIM_KEY_DIR = "/etc/dkimkeys"
VMAIL_USER = "vmail"
VMAIL_UID = 5000
VMAIL_HOME = "/var/vmail"
POSTFIX_LOG = "/var/log/postfix.log"
DOVECOT_LOG = "/var/log/dovecot.log"
DKIM_PORT = 8891
# mxctl-dsync (Dovecot 2.4 hosts): where it lives, its settings, and the loopback port
# Dovecot posts mailbox-change events to.
DSYNC_LIB = "/usr/local/lib/mxctl-dsync"
DSYNC_COMMAND = "/usr/local/sbin/mxctl-dsync"
DSYNC_CONFIG = "/etc/mxctl/dsync.json"
DSYNC_EVENT_PORT = 8894


def replication_command(dsync_args: str, replicator_args: str) -> str:
    """A shell command asking whichever replication the host runs: mxctl-dsync on a
    Dovecot 2.4 host, Dovecot's replicator (`doveadm ...`) on a 2.3 one. The probes, the
    controller and the tests read and drive both releases through it."""
    return (
        f"if [ -x {DSYNC_COMMAND} ]; then {DSYNC_COMMAND} {dsync_args}; "
        f"else doveadm {replicator_args}; fi"
    )


REPLICATION_STATUS = replication_command("status", "-f tab replicator status")
REPLICATION_USERS = replication_command("status '*'", "-f tab replicator status '*'")
# Sync every user with the peer now (queued; returns at once on both releases).
REPLICATION_RESYNC = replication_command("sync --all", "replicator replicate -f '*'")


def dkim_key_path(pair: MailPair) -> str:
    return f"{DKIM_KEY_DIR}/{pair.dkim_selector}.private"


def template_vars(
    pair: MailPair, host_name: str, release: MailRelease = SUPPORTED["bookworm"]
) -> dict[str, Any]:
    me = pair.host(host_name)
    peer = pair.peer(host_name)
    return {
        "debian": release.codename,
        "dovecot24": release.dovecot24,
        "dsync_event_port": DSYNC_EVENT_PORT,
        "fqdn": me.fqdn,
        "role": me.role,
        "peer_fqdn": peer.fqdn,
        "client_name": pair.client_name,
        "domains": list(pair.domains),
        "mailboxes": sorted(u.address for u in pair.users),
        "aliases": list(pair.aliases),
        "replication_port": pair.replication_port,
        "dkim_selector": pair.dkim_selector,
        "dkim_key": dkim_key_path(pair),
        "dkim_port": DKIM_PORT,
        "message_size_limit": pair.tunables.message_size_limit,
        "max_userip_connections": pair.tunables.max_userip_connections,
        "tls_cert": TLS_CERT,
        "tls_key": TLS_KEY,
        "tls_chain": TLS_CHAIN,
        "tls_peer_ca": TLS_PEER_CA if pair.tls_ca else None,
        "dovecot_users": DOVECOT_USERS,
        "dovecot_secrets": DOVECOT_SECRETS,
        "vmail_uid": VMAIL_UID,
        "vmail_home": VMAIL_HOME,
        "postfix_log": POSTFIX_LOG,
        "dovecot_log": DOVECOT_LOG,
    }


def parse_passwd_file(text: str) -> dict[str, str]:
    """{user: stored scheme+hash} from a Dovecot passwd-file (the host's current one)."""
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        user, _, rest = line.partition(":")
        hashes[user] = rest.partition(":")[0]
    return hashes


def passwd_file(pair: MailPair, current: Mapping[str, str]) -> str:
    """Dovecot's passwd-file: `user:{ARGON2ID}hash::::::`, one line per mailbox.

    A user's current hash (ARGON2ID, or SHA512-CRYPT from an older mxctl) is kept when it
    still matches their password, so an unchanged inventory uploads an unchanged file; a
    changed password gets a new ARGON2ID hash.
    """
    lines = ["# Managed by mxctl (deploys/users.py); edit the inventory, not this file."]
    for user in sorted(pair.users, key=lambda u: u.address):
        hashed = cryptpw.hash_keeping(user.password.reveal(), current.get(user.address))
        lines.append(f"{user.address}:{hashed}::::::")
    return "\n".join(lines) + "\n"


def dsync_settings(pair: MailPair, host_name: str) -> str:
    """mxctl-dsync's settings (no secret: doveadm reads its password from Dovecot's config)."""
    me, peer = pair.host(host_name), pair.peer(host_name)
    settings = {
        "host": me.fqdn,
        "peer": peer.fqdn,
        "port": pair.replication_port,
        "event_port": DSYNC_EVENT_PORT,
        "sweep_every": pair.tunables.dsync_sweep_every,
        "workers": pair.tunables.dsync_workers,
    }
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


def dovecot_secrets_conf(pair: MailPair) -> str:
    return (
        "# Managed by mxctl (deploys/replication.py). Secret: mode 0600, never in the repo.\n"
        f'doveadm_password = "{pair.replication_password.reveal()}"\n'
    )


def dkim_private_key(pair: MailPair) -> str:
    return pair.dkim_key.reveal().strip() + "\n"


def key_and_chain(key_pem: bytes, chain_pem: bytes) -> bytes:
    """TLS_CHAIN's content: the private key, then the certificate and its issuers."""
    return key_pem.rstrip(b"\n") + b"\n" + chain_pem
