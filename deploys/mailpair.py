"""Entry deploy for the mail pair: `pyinfra INVENTORY mxctl_deploys.mailpair.apply`.

Works from any directory once mxctl is installed (`mxctl deploy -i INVENTORY` wraps it).
Both hosts get the complete configuration (the standby can serve at any moment); they differ
only in their own name and their replication peer. The inventory is validated, and every
secret resolved on this machine, before any operation is planned on any host.
"""

from mxctl_deploys import (
    backup,
    base,
    dkim,
    dovecot,
    firewall,
    guard,
    postfix,
    replication,
    tls,
    users,
)
from mxctl_deploys.common import is_mail_host, mail_pair
from pyinfra import host, logger
from pyinfra.api import deploy

from orchestrator.deploy.dkim import records


@deploy("Mail pair")
def apply() -> None:
    pair = mail_pair()  # validates the whole inventory first, on every host alike
    if not is_mail_host():
        return
    if host.name == pair.primary.name:
        for record in records(pair.dkim_selector, pair.domains, pair.dkim_key.reveal()):
            logger.info(f"--> DKIM record to publish: {record.zone_line()}")

    base.packages_and_storage()
    # Before the services: the replication port is the peer's only from the first start.
    firewall.peer_only()
    guard.guard()
    tls_ops = tls.certificates()
    peer_ca_ops = tls.peer_ca()
    mailbox_ops = users.accounts()
    dkim.signing()
    replication_ops = replication.channel()
    dovecot_started = dovecot.imap_and_lmtp(reload_on=[*tls_ops, *peer_ca_ops, *replication_ops])
    postfix.smtp(reload_on=[*tls_ops, *mailbox_ops])
    replication.service()
    replication.resync(after=[dovecot_started, *replication_ops])
    backup.scheduled()
