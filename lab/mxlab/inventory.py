"""The lab's inventory, derived from the running lab's state (lab.json).

Nothing here is typed twice: hosts, addresses, names and SSH credentials come from the lab
contract. What the lab does not provide (user passwords, the doveadm password, the DKIM key,
host certificates) is generated once into 0600 files under the lab state directory and
referenced by path, so re-running a deploy reuses them and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pprint
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxlab import acmehost
from mxlab.credentials import ssh_keypair
from mxlab.state import LabState, load_lab_state, state_dir
from orchestrator.deploy import dkim, tlscerts
from orchestrator.errors import LabError

PRIMARY_DOMAIN = "example.test"
LAB_USERS = ("alice@example.test", "bob@example.org")
PROBE_USER = "probe@example.test"
DKIM_SELECTOR = "mail"

HostEntry = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class LabInventory:
    mail: list[HostEntry]
    mail_data: dict[str, Any]
    sender: list[HostEntry]
    sender_data: dict[str, Any] = field(default_factory=dict)
    backup: list[HostEntry] = field(default_factory=list)


def secrets_dir() -> Path:
    return state_dir() / "secrets"


def tls_dir() -> Path:
    return state_dir() / "tls"


def ensure_secret_file(path: Path, generate: Callable[[], str]) -> str:
    """A `file:` reference to `path`, created 0600 with `generate()` only if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return f"file:{path}"
    with os.fdopen(fd, "w") as f:
        f.write(generate().rstrip("\n") + "\n")
    return f"file:{path}"


def _password() -> str:
    return secrets.token_urlsafe(24)


def user_secret_path(address: str) -> Path:
    return secrets_dir() / f"mail-user-{address.replace('@', '-at-')}"


def dkim_key_path() -> Path:
    return secrets_dir() / "mail-dkim.key"


def doveadm_password_path() -> Path:
    return secrets_dir() / "mail-doveadm-password"


def backup_ssh_key_path() -> Path:
    return secrets_dir() / "backup-ssh-key"


def backup_password_path() -> Path:
    return secrets_dir() / "backup-repository-password"


BACKUP_USER = "mxbackup"  # mxlab.deploys.backuphost's restricted SFTP account


def _known_host_line(lab: LabState, name: str) -> str:
    """The pinned host key of lab host `name`, from the lab's known_hosts file."""
    for line in Path(lab.known_hosts).read_text().splitlines():
        if name in line.split(" ", 1)[0].split(","):
            return line
    raise LabError(f"{lab.known_hosts} has no key for {name}: rebuild the lab")


def _backup_settings(lab: LabState) -> tuple[dict[str, Any], str]:
    """The pair's `mail_backup` (restic over SFTP to the lab host `backup`) and the public
    key the target must accept."""
    target = next(h for h in lab.hosts.values() if h.role == "backup")
    public_key = ssh_keypair(backup_ssh_key_path(), "mxctl-mail-backup")
    settings = {
        "target": f"sftp:{BACKUP_USER}@{target.fqdn}:/repo",
        "password": ensure_secret_file(backup_password_path(), _password),
        "ssh_key": f"file:{backup_ssh_key_path()}",
        "ssh_known_hosts": _known_host_line(lab, target.fqdn),
        "interval": os.environ.get("MXCTL_LAB_BACKUP_INTERVAL", "1h"),
        "keep": {"hourly": 24, "daily": 7, "weekly": 4, "monthly": 12},
    }
    return settings, public_key


def ssh_data(lab: LabState, address: str) -> dict[str, Any]:
    return {
        "ssh_hostname": address,
        "ssh_user": lab.ssh_user,
        "ssh_key": lab.ssh_key,
        "ssh_known_hosts_file": lab.known_hosts,
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
    }


def build(lab: LabState | None = None) -> LabInventory:
    """Inventory groups for the lab: `mail` (mx1 primary, mx2 standby) and `sender`."""
    lab = lab or load_lab_state()
    mail_hosts = sorted((h for h in lab.hosts.values() if h.role == "mail"), key=lambda h: h.name)
    senders = [h for h in lab.hosts.values() if h.role == "sender"]
    if len(mail_hosts) != 2:
        raise LabError(f"the lab has {len(mail_hosts)} mail hosts; the pair needs two")
    if not lab.ca_cert or not lab.ca_key:
        raise LabError("lab.json names no CA (ca_cert/ca_key): rebuild the lab")
    domains = sorted(lab.zones, key=lambda z: (z != PRIMARY_DOMAIN, z))
    client_name = f"mail.{domains[0]}"
    mail: list[HostEntry] = []
    for h, role in zip(mail_hosts, ("primary", "standby"), strict=True):
        cert, key = acmehost.issued(h.fqdn) or tlscerts.issue_lab_cert(
            Path(lab.ca_cert), Path(lab.ca_key), (h.fqdn, client_name), tls_dir()
        )
        mail.append(
            (
                h.name,
                {
                    **ssh_data(lab, h.address),
                    "mail_role": role,
                    "mail_fqdn": h.fqdn,
                    "mail_addresses": [h.address],
                    "mail_tls_cert": str(cert),
                    "mail_tls_key": str(key),
                },
            )
        )
    mail_data: dict[str, Any] = {
        "mail_domains": domains,
        "mail_client_name": client_name,
        "mail_users": [
            {"address": a, "password": ensure_secret_file(user_secret_path(a), _password)}
            for a in LAB_USERS
        ],
        "mail_probe_user": {
            "address": PROBE_USER,
            "password": ensure_secret_file(user_secret_path(PROBE_USER), _password),
        },
        "mail_aliases": {f"postmaster@{d}": LAB_USERS[0] for d in domains},
        "mail_replication_password": ensure_secret_file(doveadm_password_path(), _password),
        "mail_dkim_selector": DKIM_SELECTOR,
        "mail_dkim_key": ensure_secret_file(dkim_key_path(), dkim.generate_private_key_pem),
        "mail_tls_ca": acmehost.trust_file(lab),
        "mail_nameservers": [ns.address for ns in lab.nameservers()],
    }
    backup_hosts = [h for h in lab.hosts.values() if h.role == "backup"]
    backup: list[HostEntry] = []
    if backup_hosts:
        secrets_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        mail_data["mail_backup"], public_key = _backup_settings(lab)
        backup = [
            (h.name, {**ssh_data(lab, h.address), "backup_authorized_key": public_key})
            for h in backup_hosts
        ]
    sender = [
        (
            h.name,
            {
                **ssh_data(lab, h.address),
                "sender_fqdn": h.fqdn,
                "sender_mynetworks": ["127.0.0.0/8", f"{lab.gateway}/32"],
            },
        )
        for h in senders
    ]
    return LabInventory(mail=mail, mail_data=mail_data, sender=sender, backup=backup)


def write_standalone(path: Path, lab: LabState | None = None) -> Path:
    """The lab inventory as a self-contained pyinfra inventory file: plain data, no import
    of mxlab, as an operator's own infrastructure repository would hold it."""
    inv = build(lab)
    text = (
        '"""The mxctl lab as plain inventory data, written by `mxctl lab inventory`."""\n\n'
        f"mail = ({pprint.pformat(inv.mail)}, {pprint.pformat(inv.mail_data)})\n"
        f"sender = {pprint.pformat(inv.sender)}\n"
        f"backup = {pprint.pformat(inv.backup)}\n"
    )
    path.write_text(text)
    return path


def first_deploy_record() -> Path:
    """Where the lab keeps the timing of the mail pair's deploy onto bare hosts."""
    return state_dir() / "deploy-first.json"


def record_first_deploy(seconds: float, operations: int, changed: int) -> None:
    """Keep the first (bare-host) deploy's timing: only a fresh lab can measure it again."""
    path = first_deploy_record()
    if path.exists():
        return
    path.write_text(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "operations": operations,
                "changed": changed,
                "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        + "\n"
    )


def recorded_first_deploy() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(first_deploy_record().read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data
