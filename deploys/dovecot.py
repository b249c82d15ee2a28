"""Dovecot unit: IMAP (STARTTLS on 143, TLS on 993), LMTP, SASL for Postfix, sdbox."""

from __future__ import annotations

from mxctl_deploys.common import host_vars, release, template
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed


@deploy("Dovecot")
def imap_and_lmtp(reload_on: list[OperationMeta]) -> OperationMeta:
    """Configure Dovecot (2.3 or 2.4 language, by the host's release); reload only on
    change. Returns the operation that starts it."""
    src = "dovecot/dovecot24.conf.j2" if release().dovecot24 else "dovecot/dovecot.conf.j2"
    conf = template("Dovecot configuration", src, "/etc/dovecot/dovecot.conf", host_vars())
    running = systemd.service(name="Dovecot running", service="dovecot", running=True, enabled=True)
    systemd.service(
        name="Reload Dovecot",
        service="dovecot",
        reloaded=True,
        _if=any_changed(conf, *reload_on),
    )
    return running
