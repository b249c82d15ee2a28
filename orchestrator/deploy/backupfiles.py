"""What the backup unit puts on each mail host, computed from the validated pair.

Pure: the deploy (mxctl_deploys.backup) uploads what this returns. Secrets go to 0600 files
the agent's settings name by path; the settings file itself holds no secret.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.deploy.backup_spec import BackupSpec
from orchestrator.deploy.hostfiles import DKIM_KEY_DIR, DOVECOT_USERS
from orchestrator.deploy.spec import MailPair

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "backup" / "agent"
AGENT_LIB = "/usr/local/lib/mxctl"
AGENT_DIR = f"{AGENT_LIB}/backup_agent"
AGENT_COMMAND = "/usr/local/sbin/mxctl-backup"
CONFIG_DIR = "/etc/mxctl/backup"
SETTINGS_FILE = f"{CONFIG_DIR}/agent.json"
PASSWORD_FILE = f"{CONFIG_DIR}/repository-password"
SSH_KEY_FILE = f"{CONFIG_DIR}/ssh_key"
KNOWN_HOSTS_FILE = f"{CONFIG_DIR}/known_hosts"
S3_ENV_FILE = f"{CONFIG_DIR}/s3.env"
STATE_DIR = "/var/lib/mxctl-backup"
CACHE_DIR = "/var/cache/mxctl-backup"
PACKAGES = ["restic", "python3-dnspython"]
# What rebuilds a host besides its mail: users, DKIM key, TLS material, Postfix maps, the
# mxctl config (when the controller runs there). The backup unit's own secrets stay out.
HOST_FILES = (DOVECOT_USERS, DKIM_KEY_DIR, "/etc/mxctl", "/etc/postfix")
EXCLUDES = (CONFIG_DIR, "/etc/mxctl/fenced")

WRAPPER = f"""#!/bin/sh
# mxctl backup agent (installed by mxctl's deploy): mxctl-backup run|role|restore|drill|...
PYTHONPATH={AGENT_LIB} exec python3 -m backup_agent "$@"
"""


def agent_files() -> dict[str, Path]:
    """{remote path: local source} of the agent's modules."""
    return {f"{AGENT_DIR}/{p.name}": p for p in sorted(AGENT_SOURCE.glob("*.py"))}


def sftp_command(backup: BackupSpec) -> str:
    t = backup.target
    if t.kind != "sftp":
        return ""
    user_host = t.repository.split(":")[1]
    return (
        f"ssh -i {SSH_KEY_FILE} -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={KNOWN_HOSTS_FILE} "
        f"-o ServerAliveInterval=15 -p {t.ssh_port} {user_host} -s sftp"
    )


def agent_settings(pair: MailPair, host_name: str) -> str:
    backup = pair.backup
    assert backup is not None
    settings = {
        "repository": backup.target.repository,
        "password_file": PASSWORD_FILE,
        "host_tag": pair.client_name,
        "fqdn": pair.host(host_name).fqdn,
        "mx_domain": pair.domains[0],
        "interval_s": backup.interval_s,
        "max_age_s": backup.max_age_s,
        "keep_flags": backup.keep_flags(),
        "extra_paths": list(HOST_FILES),
        "excludes": list(EXCLUDES),
        "sftp_command": sftp_command(backup),
        "s3_env_file": S3_ENV_FILE if backup.target.kind == "s3" else "",
    }
    return json.dumps(settings, indent=1, sort_keys=True) + "\n"


def s3_env(backup: BackupSpec) -> str:
    assert backup.s3_access_key_id and backup.s3_secret_access_key
    return (
        f"AWS_ACCESS_KEY_ID={backup.s3_access_key_id.reveal()}\n"
        f"AWS_SECRET_ACCESS_KEY={backup.s3_secret_access_key.reveal()}\n"
    )


def timer_vars(backup: BackupSpec) -> dict[str, object]:
    return {
        "interval_s": backup.interval_s,
        "on_calendar": backup.on_calendar(),
        "drill_calendar": backup.drill_calendar,
        "drill_sample": backup.drill_sample,
    }
