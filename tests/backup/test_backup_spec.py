"""`mail_backup` in the inventory: bad input stops the deploy naming the field; good input
becomes the agent's settings and timer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.deploy import backupfiles
from orchestrator.deploy.spec import load_pair
from orchestrator.errors import ConfigError
from tests.deploy import factories

KNOWN_HOST = "backup.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo3xYxVgXh5nQ6"


def with_backup(tmp: Path, **overrides: Any) -> dict[str, dict[str, Any]]:
    inv = factories.valid_inventory(tmp)
    backup: dict[str, Any] = {
        "target": "sftp:mxbackup@backup.example.com:/repo",
        "password": factories.write_secret(tmp / "restic-pw", "correct horse battery"),
        "ssh_key": factories.write_secret(tmp / "bk-key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
        "ssh_known_hosts": KNOWN_HOST,
        "interval": "15min",
        "keep": {"hourly": 24, "daily": 7, "weekly": 4, "monthly": 12},
    }
    for key, value in overrides.items():
        if value is None:
            backup.pop(key, None)
        else:
            backup[key] = value
    for data in inv.values():
        data["mail_backup"] = backup
    return inv


def problems(tmp: Path, **overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_pair(with_backup(tmp, **overrides), environ={})
    return err.value.problems


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"target": None}, "mail_backup.target", "required"),
        ({"target": "ftp://host/x"}, "mail_backup.target", "unknown kind of target"),
        ({"target": "sftp:backup.example.com/repo"}, "mail_backup.target", "sftp:USER@HOST"),
        ({"target": "s3:https://s3.example.com"}, "mail_backup.target", "BUCKET"),
        ({"target": "/var/vmail/backups"}, "mail_backup.target", "inside the mail store"),
        ({"password": None}, "mail_backup.password", "secret reference"),
        ({"password": "hunter2"}, "mail_backup.password", "secret reference"),
        ({"password": "env:NOT_SET_ANYWHERE"}, "mail_backup.password", "NOT_SET_ANYWHERE"),
        ({"ssh_key": None}, "mail_backup.ssh_key", "sftp target"),
        ({"ssh_known_hosts": None}, "mail_backup.ssh_known_hosts", "pinned"),
        ({"ssh_known_hosts": "backup.example.com"}, "mail_backup.ssh_known_hosts", "pinned"),
        ({"interval": "7min"}, "mail_backup.interval", "on the clock"),
        ({"interval": "fortnightly"}, "mail_backup.interval", "on the clock"),
        ({"max_age": "10min"}, "mail_backup.max_age", "longer than the interval"),
        ({"keep": {"daily": -1}}, "mail_backup.keep.daily", "count"),
        ({"keep": {"yearly": 2, "daily": 1}}, "mail_backup.keep.yearly", "unknown"),
        ({"keep": {"daily": 0}}, "mail_backup.keep", "keeps nothing"),
        ({"keep": [1, 2]}, "mail_backup.keep", "mapping"),
        ({"schedule": "hourly"}, "mail_backup.schedule", "unknown setting"),
        (
            {"drill": {"calendar": "daily\nExecStart=/bin/sh"}},
            "mail_backup.drill.calendar",
            "systemd calendar",
        ),
        ({"drill": {"sample": -1}}, "mail_backup.drill.sample", "0 (all)"),
        ({"drill": {"every": "1d"}}, "mail_backup.drill.every", "unknown setting"),
    ],
)
def test_bad_backup_settings_name_their_field(
    tmp_path: Path, overrides: dict[str, Any], field: str, words: str
) -> None:
    found = problems(tmp_path, **overrides)
    assert any(p.startswith(f"{field}:") and words in p for p in found), found


def test_s3_target_needs_its_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, target="s3:https://s3.example.com/mail-backups/pair1")
    assert any(p.startswith("mail_backup.s3_access_key_id:") for p in found), found
    assert any(p.startswith("mail_backup.s3_secret_access_key:") for p in found), found


def test_backup_settings_differing_between_hosts_are_refused(tmp_path: Path) -> None:
    inv = with_backup(tmp_path)
    first = next(iter(inv.values()))
    first["mail_backup"] = {**first["mail_backup"], "interval": "1h"}
    with pytest.raises(ConfigError) as err:
        load_pair(inv, environ={})
    assert any(p.startswith("mail_backup:") and "differs" in p for p in err.value.problems)


def test_no_backup_settings_means_no_backup(tmp_path: Path) -> None:
    assert load_pair(factories.valid_inventory(tmp_path), environ={}).backup is None


def test_good_settings_become_the_agent_settings_and_timer(tmp_path: Path) -> None:
    pair = load_pair(with_backup(tmp_path), environ={})
    backup = pair.backup
    assert backup is not None
    assert backup.interval_s == 900 and backup.max_age_s == 2 * 900 + 900
    assert backup.on_calendar() == "*-*-* *:00/15:00"
    assert "correct horse" not in repr(backup)
    settings = json.loads(backupfiles.agent_settings(pair, pair.primary.name))
    assert settings["repository"] == "sftp:mxbackup@backup.example.com:/repo"
    assert settings["keep_flags"] == [
        "--keep-hourly=24", "--keep-daily=7", "--keep-weekly=4", "--keep-monthly=12",
    ]  # fmt: skip
    assert settings["host_tag"] == pair.client_name
    assert settings["fqdn"] == pair.primary.fqdn
    assert "StrictHostKeyChecking=yes" in settings["sftp_command"]
    assert "correct horse" not in json.dumps(settings)
    assert "/etc/dovecot/users" in settings["extra_paths"]
    assert "/etc/mxctl/backup" in settings["excludes"]


@pytest.mark.parametrize(
    ("interval", "calendar"),
    [("5min", "*-*-* *:00/5:00"), ("1h", "*-*-* 00/1:00:00"), ("6h", "*-*-* 00/6:00:00"),
     ("24h", "*-*-* 00:00:00")],
)  # fmt: skip
def test_interval_runs_on_the_clock(tmp_path: Path, interval: str, calendar: str) -> None:
    pair = load_pair(with_backup(tmp_path, interval=interval), environ={})
    assert pair.backup is not None and pair.backup.on_calendar() == calendar


def test_scheduled_restore_drill(tmp_path: Path) -> None:
    pair = load_pair(with_backup(tmp_path), environ={})
    assert pair.backup is not None
    assert (pair.backup.drill_calendar, pair.backup.drill_sample) == ("Sun *-*-* 04:30:00", 5)
    pair = load_pair(with_backup(tmp_path, drill={"calendar": "off"}), environ={})
    assert pair.backup is not None and pair.backup.drill_calendar == ""
    pair = load_pair(with_backup(tmp_path, drill={"calendar": "daily", "sample": 0}), environ={})
    assert pair.backup is not None
    assert backupfiles.timer_vars(pair.backup)["drill_calendar"] == "daily"


def test_local_and_s3_targets(tmp_path: Path) -> None:
    pair = load_pair(with_backup(tmp_path, target="/srv/backups/mail/"), environ={})
    assert pair.backup is not None and pair.backup.target.repository == "/srv/backups/mail"
    env = {"K": "key-id", "S": "secret-key"}
    s3 = with_backup(
        tmp_path, target="s3:https://s3.example.com/bucket1/mail",
        s3_access_key_id="env:K", s3_secret_access_key="env:S",
    )  # fmt: skip
    pair = load_pair(s3, environ=env)
    assert pair.backup is not None and pair.backup.target.kind == "s3"
    assert backupfiles.s3_env(pair.backup) == (
        "AWS_ACCESS_KEY_ID=key-id\nAWS_SECRET_ACCESS_KEY=secret-key\n"
    )


def test_the_agent_uploaded_is_every_module_of_the_package() -> None:
    files = backupfiles.agent_files()
    names = {Path(p).name for p in files}
    assert {"__main__.py", "jobs.py", "restic.py", "mailstore.py", "primary.py"} <= names
    assert all(p.startswith(backupfiles.AGENT_DIR + "/") for p in files)
