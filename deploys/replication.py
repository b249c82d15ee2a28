"""Replication unit: Dovecot 2.3 replicator (dsync) both ways over an authenticated
doveadm TCP channel (see /work/shared/notes/LAB.md for the pitfalls)."""

from __future__ import annotations

from mxctl_deploys.common import host_vars, mail_pair, secret_file, template
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from orchestrator.deploy.hostfiles import DOVECOT_SECRETS, dovecot_secrets_conf


@deploy("Replication")
def channel() -> list[OperationMeta]:
    """Write the replication settings and the doveadm password; returns the operations
    whose change needs a Dovecot reload."""
    conf = template(
        "Dovecot replication",
        "dovecot/replication.conf.j2",
        "/etc/dovecot/mxctl-replication.conf",
        host_vars(),
    )
    secrets = secret_file(
        "Dovecot doveadm password", dovecot_secrets_conf(mail_pair()), DOVECOT_SECRETS
    )
    return [conf, secrets]


@deploy("Replication resync")
def resync(after: list[OperationMeta]) -> None:
    """After Dovecot started or its replication settings changed, queue every user for sync:
    a replicator that found its peer refusing (on a first deploy it starts before the peer
    listens) would otherwise wait 300 s before trying again."""
    server.shell(
        name="Resync all users with the peer",
        commands=["doveadm replicator replicate '*'"],
        _if=any_changed(*after),
    )
