"""DKIM unit: OpenDKIM signing with the pair's one key (the same on both hosts)."""

from __future__ import annotations

from mxctl_deploys.common import host_vars, mail_pair, secret_file, template
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from orchestrator.deploy.hostfiles import DKIM_KEY_DIR, dkim_key_path, dkim_private_key


@deploy("DKIM")
def signing() -> None:
    pair = mail_pair()
    files.directory(
        name="DKIM key directory", path=DKIM_KEY_DIR, user="opendkim", group="opendkim", mode="700"
    )
    key = secret_file(
        "DKIM private key",
        dkim_private_key(pair),
        dkim_key_path(pair),
        user="opendkim",
        group="opendkim",
        mode="600",
    )
    conf = template(
        "OpenDKIM configuration", "opendkim/opendkim.conf.j2", "/etc/opendkim.conf", host_vars()
    )
    systemd.service(name="OpenDKIM running", service="opendkim", running=True, enabled=True)
    # A restart, not a reload: the socket may have changed. Postfix accepts mail unsigned
    # for the second it takes (milter_default_action = accept).
    systemd.service(
        name="Restart OpenDKIM", service="opendkim", restarted=True, _if=any_changed(key, conf)
    )
