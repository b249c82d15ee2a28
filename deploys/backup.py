"""Backup unit: the agent (orchestrator/backup/agent), its settings and secrets, and a
systemd timer; both hosts get it, only the current primary backs up (the agent checks at
every run, so backups follow a failover without a deploy). Skipped when the inventory has
no `mail_backup`."""

from __future__ import annotations

from io import StringIO

from mxctl_deploys.base import install_packages
from mxctl_deploys.common import mail_pair, secret_file, template
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from orchestrator.deploy import backupfiles as bf


def _dir(path: str, mode: str) -> None:
    files.directory(name=f"Directory {path}", path=path, user="root", group="root", mode=mode)


@deploy("Backup")
def scheduled() -> None:
    pair = mail_pair()
    backup = pair.backup
    if backup is None:
        host.noop("no mail_backup in the inventory: no backups")
        return
    install_packages(bf.PACKAGES)
    for path, mode in (
        (bf.CONFIG_DIR, "700"),
        (bf.AGENT_LIB, "755"),
        (bf.AGENT_DIR, "755"),
        (bf.STATE_DIR, "711"),
        (bf.CACHE_DIR, "700"),
    ):
        _dir(path, mode)
    for dest, src in bf.agent_files().items():
        files.put(
            name=f"Agent {src.name}", src=str(src), dest=dest, mode="644", create_remote_dir=False
        )
    files.put(
        name="mxctl-backup command",
        src=StringIO(bf.WRAPPER),
        dest=bf.AGENT_COMMAND,
        mode="755",
        create_remote_dir=False,
    )
    secret_file("Backup agent settings", bf.agent_settings(pair, host.name), bf.SETTINGS_FILE)
    secret_file("Backup repository password", backup.password.reveal() + "\n", bf.PASSWORD_FILE)
    if backup.ssh_key is not None:
        secret_file("Backup SSH key", backup.ssh_key.reveal().strip() + "\n", bf.SSH_KEY_FILE)
        files.put(
            name="Backup target host key",
            src=StringIO(backup.ssh_known_hosts + "\n"),
            dest=bf.KNOWN_HOSTS_FILE,
            mode="644",
            create_remote_dir=False,
        )
    if backup.target.kind == "s3":
        secret_file("Backup S3 credentials", bf.s3_env(backup), bf.S3_ENV_FILE)
    variables = {"agent_command": bf.AGENT_COMMAND, **bf.timer_vars(backup)}
    units = [
        template(
            "Backup service",
            "backup/mxctl-backup.service.j2",
            "/etc/systemd/system/mxctl-backup.service",
            variables,
        ),
        template(
            "Backup timer",
            "backup/mxctl-backup.timer.j2",
            "/etc/systemd/system/mxctl-backup.timer",
            variables,
        ),
    ]
    drill_units = (
        ("Restore drill service", "mxctl-backup-drill.service"),
        ("Restore drill timer", "mxctl-backup-drill.timer"),
    )
    for name, unit in drill_units:
        path = f"/etc/systemd/system/{unit}"
        if backup.drill_calendar:
            units.append(template(name, f"backup/{unit}.j2", path, variables))
        else:  # `drill: {calendar: off}`
            units.append(files.file(name=f"{name} removed", path=path, present=False))
    systemd.daemon_reload(name="systemd daemon-reload (backup units)", _if=any_changed(*units))
    systemd.service(
        name="Backup timer enabled", service="mxctl-backup.timer", enabled=True, running=True
    )
    if backup.drill_calendar:
        systemd.service(
            name="Restore drill timer enabled",
            service="mxctl-backup-drill.timer",
            enabled=True,
            running=True,
        )
        systemd.service(
            name="Restore drill timer restarted (new calendar)",
            service="mxctl-backup-drill.timer",
            restarted=True,
            _if=any_changed(*units[2:]),
        )
    systemd.service(
        name="Backup timer restarted (new interval)",
        service="mxctl-backup.timer",
        restarted=True,
        _if=any_changed(*units),
    )
