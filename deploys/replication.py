"""Replication unit: two-way dsync with the peer over an authenticated doveadm TLS channel.

Debian 12 (Dovecot 2.3): Dovecot's replicator (see /work/shared/notes/LAB.md for its
pitfalls). Debian 13 (Dovecot 2.4, no replicator): mxctl-dsync, a systemd service of each
host that runs `doveadm sync` per user when Dovecot reports a change, plus periodic sweeps
(orchestrator/replication).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from mxctl_deploys.common import host_vars, mail_pair, release, secret_file, template
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

import orchestrator.replication
from orchestrator.deploy.hostfiles import (
    DOVECOT_SECRETS,
    DSYNC_COMMAND,
    DSYNC_CONFIG,
    DSYNC_LIB,
    dovecot_secrets_conf,
    dsync_settings,
)

DSYNC_UNIT = "mxctl-dsync"
DSYNC_PACKAGE = "mxctl_dsync"  # the name orchestrator/replication has on the hosts
RESYNC_23 = "doveadm replicator replicate '*'"
# mxctl-dsync's unit is Type=simple: systemd calls it running before it listens on
# loopback, and a first deploy asks it to resync at once (seen on a freshly installed
# Debian 13 host: "the service does not answer", exit 75, the deploy failed). Retry while
# it answers 75 (not listening yet), for up to 15 s.
RESYNC_24 = (
    f"(i=0; while :; do {DSYNC_COMMAND} sync --all; rc=$?; [ $rc -ne 75 ] && exit $rc; "
    "i=$((i+1)); [ $i -ge 30 ] && exit 75; sleep 0.5; done)"
)


@deploy("Replication")
def channel() -> list[OperationMeta]:
    """Write the replication settings and the doveadm password; returns the operations
    whose change needs a Dovecot reload."""
    src = "dovecot/replication24.conf.j2" if release().dovecot24 else "dovecot/replication.conf.j2"
    conf = template("Dovecot replication", src, "/etc/dovecot/mxctl-replication.conf", host_vars())
    secrets = secret_file(
        "Dovecot doveadm password", dovecot_secrets_conf(mail_pair()), DOVECOT_SECRETS
    )
    return [conf, secrets]


@deploy("Replication service")
def service() -> None:
    """Dovecot 2.4 only: install and run mxctl-dsync (restarted when any of it changed)."""
    if not release().dovecot24:
        return
    source = Path(orchestrator.replication.__file__).parent
    files.directory(name="mxctl-dsync code directory", path=f"{DSYNC_LIB}/{DSYNC_PACKAGE}")
    files.directory(name="/etc/mxctl", path="/etc/mxctl", mode="755")
    code = [
        files.put(
            name=f"mxctl-dsync {module.name}",
            src=str(module),
            dest=f"{DSYNC_LIB}/{DSYNC_PACKAGE}/{module.name}",
            mode="644",
            create_remote_dir=False,
        )
        for module in sorted(source.glob("*.py"))
    ]
    command = files.put(
        name="mxctl-dsync command",
        src=StringIO(f'#!/bin/sh\nPYTHONPATH={DSYNC_LIB} exec python3 -m {DSYNC_PACKAGE} "$@"\n'),
        dest=DSYNC_COMMAND,
        mode="755",
        create_remote_dir=False,
    )
    settings = files.put(
        name="mxctl-dsync settings",
        src=StringIO(dsync_settings(mail_pair(), host.name)),
        dest=DSYNC_CONFIG,
        mode="644",
        create_remote_dir=False,
    )
    unit = template(
        "mxctl-dsync unit",
        "replication/mxctl-dsync.service.j2",
        f"/etc/systemd/system/{DSYNC_UNIT}.service",
        {"command": DSYNC_COMMAND, "config": DSYNC_CONFIG},
    )
    systemd.daemon_reload(name="systemd daemon-reload", _if=unit.did_change)
    systemd.service(name="mxctl-dsync running", service=DSYNC_UNIT, running=True, enabled=True)
    systemd.service(
        name="Restart mxctl-dsync",
        service=DSYNC_UNIT,
        restarted=True,
        _if=any_changed(*code, command, settings, unit),
    )


@deploy("Replication resync")
def resync(after: list[OperationMeta]) -> None:
    """After Dovecot started or its replication settings changed, sync every user now: a
    2.3 replicator that found its peer refusing (on a first deploy it starts before the
    peer listens) would otherwise wait 300 s; mxctl-dsync would wait for its next sweep."""
    server.shell(
        name="Resync all users with the peer",
        commands=[RESYNC_24 if release().dovecot24 else RESYNC_23],
        _if=any_changed(*after),
    )
