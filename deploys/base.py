"""Base unit: packages, the mail storage owner, /etc/mailname."""

from __future__ import annotations

from io import StringIO

from mxctl_deploys.common import host_vars
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server

from orchestrator.deploy.hostfiles import VMAIL_HOME, VMAIL_UID, VMAIL_USER

MAIL_PACKAGES = [
    "postfix",
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-lmtpd",
    "opendkim",
    "openssl",
    "ca-certificates",
    # The failover controller fences a host with an nftables table of its own; the host
    # firewall and the self-fence guard (python3 + dnspython, iproute2 for the link) too.
    "nftables",
    "python3-dnspython",
    "iproute2",
]


def install_packages(packages: list[str]) -> OperationMeta:
    """Install `packages`; refresh the package lists only when something is missing, so a
    re-run reports no change."""
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    return apt.packages(
        name="Install packages",
        packages=packages,
        update=bool(missing),
        no_recommends=True,
    )


@deploy("Base")
def packages_and_storage() -> None:
    install_packages(MAIL_PACKAGES)
    server.group(name="Mail storage group", group=VMAIL_USER, gid=VMAIL_UID)
    server.user(
        name="Mail storage user",
        user=VMAIL_USER,
        uid=VMAIL_UID,
        group=VMAIL_USER,
        home=VMAIL_HOME,
        shell="/usr/sbin/nologin",
        ensure_home=False,
    )
    files.directory(
        name="Mail storage directory",
        path=VMAIL_HOME,
        user=VMAIL_USER,
        group=VMAIL_USER,
        mode="750",
    )
    # Dovecot's LMTP and auth sockets live here. Debian 12's postfix package creates it;
    # Debian 13's only when Postfix first starts, which is after Dovecot.
    files.directory(
        name="Postfix private socket directory",
        path="/var/spool/postfix/private",
        user="postfix",
        group="root",
        mode="700",
    )
    files.put(
        name="/etc/mailname",
        src=StringIO(f"{host_vars()['fqdn']}\n"),
        dest="/etc/mailname",
        user="root",
        group="root",
        mode="644",
        create_remote_dir=False,
    )
