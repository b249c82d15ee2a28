"""The lab's off-site backup target: `pyinfra LAB_INVENTORY mxlab.deploys.backuphost.apply`.

sshd with one restricted account: SFTP only, chrooted to /srv/backup (the restic repository
is /srv/backup/repo, `sftp:mxbackup@backup.example.test:/repo` from the mail hosts), key
authentication with the mail hosts' backup key only.
"""

from io import StringIO
from pathlib import Path

from mxctl_deploys.common import InventoryError, template
from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import NoGroupError
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

BACKUP_GROUP = "backup"
LAB_TEMPLATES = Path(__file__).parent.parent / "templates"
USER = "mxbackup"
CHROOT = "/srv/backup"


@deploy("Backup target")
def sftp_target() -> None:
    key = host.data.get("backup_authorized_key")
    if not isinstance(key, str) or not key.startswith("ssh-"):
        raise InventoryError(f"{host.name}.backup_authorized_key: {key!r} is not a public key")
    server.user(
        name="Backup account", user=USER, home=CHROOT, shell="/usr/sbin/nologin", ensure_home=False
    )
    # sshd's chroot must be root-owned and not writable by others; the repository is not.
    files.directory(name="Chroot", path=CHROOT, user="root", group="root", mode="755")
    files.directory(
        name="Repository directory", path=f"{CHROOT}/repo", user=USER, group=USER, mode="700"
    )
    files.directory(
        name="Authorized keys directory",
        path="/etc/ssh/authorized_keys",
        user="root",
        group="root",
        mode="755",
    )
    keys = files.put(
        name="Mail hosts' backup key",
        src=StringIO(key + "\n"),
        dest=f"/etc/ssh/authorized_keys/{USER}",
        user="root",
        group="root",
        mode="644",
        create_remote_dir=False,
    )
    conf = template(
        "sshd: SFTP-only account",
        "backup/sshd-mxbackup.conf.j2",
        "/etc/ssh/sshd_config.d/mxbackup.conf",
        {"account": USER, "chroot": CHROOT},
        root=LAB_TEMPLATES,
    )
    systemd.service(name="sshd reloaded", service="ssh", reloaded=True, _if=any_changed(conf, keys))


@deploy("Lab backup target")
def apply() -> None:
    try:
        targets = {h.name for h in inventory.get_group(BACKUP_GROUP)}
    except NoGroupError:
        targets = set()
    if host.name in targets:
        sftp_target()
