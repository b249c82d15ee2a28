"""Postfix unit: virtual domains into Dovecot over LMTP, STARTTLS on 25, submission on 587."""

from __future__ import annotations

from mxctl_deploys.common import host_vars, release, template
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed


@deploy("Postfix")
def smtp(reload_on: list[OperationMeta]) -> None:
    """Configure Postfix; reload it only when its files (or `reload_on`) changed."""
    variables = host_vars()
    main_cf = template("Postfix main.cf", "postfix/main.cf.j2", "/etc/postfix/main.cf", variables)
    master_cf = template(
        "Postfix master.cf",
        "postfix/master.cf.j2",
        "/etc/postfix/master.cf",
        {**variables, "submission": True},
    )
    systemd.service(name="Postfix enabled", service="postfix", running=True, enabled=True)
    # Debian 12: postfix.service is a stub, postfix@- is the instance that runs and
    # reloads; Debian 13: postfix.service itself.
    unit = release().postfix_unit
    if unit != "postfix":
        systemd.service(name="Postfix running", service=unit, running=True)
    else:
        # Upgraded in place from Debian 12: the old postfix@- instance still runs master,
        # and postfix.service (the 12 stub, now 13's real unit) still looks "active" from
        # before the upgrade, so nothing would start it; its restart by the package
        # failed ("conflicting jobs 'restart' and 'stop' for postfix@-.service"), and a
        # reload of postfix@- under 13's template stops Postfix (/etc/postfix-/main.cf).
        # Seen on the lab. A host installed on 13 has no postfix@- running: no change.
        old_instance = systemd.service(
            name="Postfix's Debian 12 instance stopped", service="postfix@-", running=False
        )
        systemd.service(
            name="Postfix running as Debian 13's unit",
            service="postfix",
            running=True,
            restarted=True,
            _if=old_instance.did_change,
        )
    systemd.service(
        name="Reload Postfix",
        service=unit,
        reloaded=True,
        _if=any_changed(main_cf, master_cf, *reload_on),
    )
