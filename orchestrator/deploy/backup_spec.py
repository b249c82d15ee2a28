"""The pair's backup settings (`mail_backup` in the inventory), validated with the pair.

    mail_backup = {
        "target": "sftp:mxbackup@backup.example.test:/repo",   # or /srv/backups/mail,
                                                                # or s3:https://host/bucket/path
        "password": "file:/etc/mxctl-secrets/restic",          # restic repository password
        "ssh_key": "file:/etc/mxctl-secrets/backup-ssh-key",   # sftp: the hosts' client key
        "ssh_known_hosts": "backup.example.test ssh-ed25519 AAAA...",  # sftp: pinned key
        "s3_access_key_id": "env:BACKUP_S3_KEY_ID",            # s3 only
        "s3_secret_access_key": "env:BACKUP_S3_SECRET",        # s3 only
        "interval": "1h",          # how often (the RPO), on the clock: 5, 10, 15, 20, 30min or
                                   # 1, 2, 3, 4, 6, 8, 12, 24h
        "max_age": "3h",           # older last good backup = alert (default 2 x interval + 15 min)
        "keep": {"last": 3, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 12},
    }

Every problem is reported with its field (`mail_backup.keep.daily`) alongside the pair's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.config.fields import Reader
from orchestrator.config.secrets import Secret

FIELD = "mail_backup"
KEEP_KINDS = ("last", "hourly", "daily", "weekly", "monthly")
DEFAULT_KEEP = {"last": 3, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 12}
# Intervals that divide an hour or a day, so a systemd calendar timer runs them on the clock
# (and a run missed while the host was down is caught up at boot: Persistent=true).
CLOCK_MINUTES = (5, 10, 15, 20, 30)
CLOCK_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
KNOWN = {
    "drill",
    "target",
    "password",
    "ssh_key",
    "ssh_known_hosts",
    "s3_access_key_id",
    "s3_secret_access_key",
    "interval",
    "max_age",
    "keep",
}
# The scheduled restore drill (on the primary): weekly, a sample of 5 mailboxes.
DEFAULT_DRILL = {"calendar": "Sun *-*-* 04:30:00", "sample": "5"}
_CALENDAR = re.compile(r"^[A-Za-z0-9*,./:~ -]{1,64}$")
_SPAN = re.compile(r"^(\d+)\s*(min|m|h|d)$")
_SPAN_UNITS = {"min": 60, "m": 60, "h": 3600, "d": 86400}
_SFTP = re.compile(
    r"^sftp:(?P<user>[a-z_][a-z0-9_-]*)@(?P<host>[a-z0-9.-]+)(:(?P<port>\d+))?:(?P<path>/\S*)$"
)
_S3 = re.compile(r"^s3:(https?://)?[A-Za-z0-9.-]+(:\d+)?/[a-z0-9.-]{3,63}(/\S*)?$")
_KNOWN_HOST = re.compile(r"^\S+ (ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$")


@dataclass(frozen=True)
class BackupTarget:
    kind: str  # sftp | local | s3
    repository: str  # restic's repository string
    ssh_host: str = ""  # sftp: the host name the known_hosts line pins
    ssh_port: int = 22


@dataclass(frozen=True)
class BackupSpec:
    target: BackupTarget
    password: Secret
    interval_s: int
    max_age_s: int
    keep: tuple[tuple[str, int], ...]  # (hourly, n), (daily, n), ...
    ssh_key: Secret | None = None
    ssh_known_hosts: str = ""
    s3_access_key_id: Secret | None = None
    s3_secret_access_key: Secret | None = None
    drill_calendar: str = DEFAULT_DRILL["calendar"]  # systemd OnCalendar; "" = no scheduled drill
    drill_sample: int = 5

    def on_calendar(self) -> str:
        """The systemd OnCalendar expression that runs every `interval_s` on the clock."""
        minutes = self.interval_s // 60
        if minutes < 60:
            return f"*-*-* *:00/{minutes}:00"
        hours = minutes // 60
        return "*-*-* 00:00:00" if hours == 24 else f"*-*-* 00/{hours}:00:00"

    def keep_flags(self) -> list[str]:
        """restic forget's retention flags (a zero count keeps none of that kind)."""
        return [f"--keep-{kind}={n}" for kind, n in self.keep if n > 0]


def parse_span(text: object) -> int | None:
    """'15min', '1h', '2d' -> seconds; None when not of that form."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        return None
    match = _SPAN.match(text.strip())
    if not match:
        return None
    return int(match.group(1)) * _SPAN_UNITS[match.group(2)]


def parse_target(value: object, problems: Reader) -> BackupTarget | None:
    where = f"{FIELD}.target"
    if not isinstance(value, str) or not value:
        problems.problem(
            where,
            "required: sftp:USER@HOST:/path, an absolute local path, or s3:https://HOST/BUCKET/path",
        )
        return None
    if value.startswith("sftp:"):
        match = _SFTP.match(value)
        if not match:
            problems.problem(
                where, f"{value!r}: use sftp:USER@HOST:/path (or sftp:USER@HOST:PORT:/path)"
            )
            return None
        port = int(match.group("port") or 22)
        if not 1 <= port <= 65535:
            problems.problem(where, f"port {port} is out of range")
            return None
        user, host, path = match.group("user"), match.group("host"), match.group("path")
        # restic's own sftp syntax; a non-default port goes into the ssh command instead.
        return BackupTarget("sftp", f"sftp:{user}@{host}:{path}", host, port)
    if value.startswith("s3:"):
        if not _S3.match(value):
            problems.problem(where, f"{value!r}: use s3:https://HOST[:PORT]/BUCKET[/path]")
            return None
        return BackupTarget("s3", value)
    if value.startswith("/"):
        if value.rstrip("/") in ("", "/var/vmail") or value.startswith("/var/vmail/"):
            problems.problem(
                where, f"{value!r}: a local repository must not be inside the mail store"
            )
            return None
        return BackupTarget("local", value.rstrip("/"))
    problems.problem(
        where,
        f"{value!r}: unknown kind of target; use sftp:USER@HOST:/path, /absolute/path or "
        "s3:https://HOST/BUCKET/path",
    )
    return None


def _secret(data: Mapping[str, object], key: str, problems: Reader, why: str) -> Secret | None:
    value = data.get(key)
    where = f"{FIELD}.{key}"
    if not isinstance(value, str) or not value:
        problems.problem(
            where, f"required {why}: a secret reference, `env:NAME` or `file:/path` (0600)"
        )
        return None
    return problems.resolve(value, where)


def _keep(value: object, problems: Reader) -> tuple[tuple[str, int], ...]:
    where = f"{FIELD}.keep"
    if value is None:
        return tuple(DEFAULT_KEEP.items())
    if not isinstance(value, Mapping):
        problems.problem(
            where, "must be a mapping like {hourly: 24, daily: 7, weekly: 4, monthly: 12}"
        )
        return ()
    for key in value:
        if key not in KEEP_KINDS:
            problems.problem(f"{where}.{key}", f"unknown (known: {', '.join(KEEP_KINDS)})")
    out: list[tuple[str, int]] = []
    for kind in KEEP_KINDS:
        n = value.get(kind, 0)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10_000:
            problems.problem(f"{where}.{kind}", f"{n!r}: must be a count between 0 and 10000")
            continue
        out.append((kind, n))
    if out and not any(n for _, n in out):
        problems.problem(
            where, "keeps nothing: pruning would delete every backup; set a count above 0"
        )
    return tuple(out)


def _drill(value: object, problems: Reader) -> tuple[str, int]:
    """The scheduled restore drill: {calendar: systemd OnCalendar or "off", sample: N}."""
    where = f"{FIELD}.drill"
    if value is None:
        return DEFAULT_DRILL["calendar"], int(DEFAULT_DRILL["sample"])
    if not isinstance(value, Mapping):
        problems.problem(
            where, 'must be a mapping like {calendar: "Sun *-*-* 04:30:00", sample: 5}'
        )
        return "", 0
    for key in sorted(set(value) - {"calendar", "sample"}):
        problems.problem(f"{where}.{key}", "unknown setting (known: calendar, sample)")
    calendar = value.get("calendar", DEFAULT_DRILL["calendar"])
    if calendar == "off":
        calendar = ""
    elif not isinstance(calendar, str) or not _CALENDAR.match(calendar):
        problems.problem(
            f"{where}.calendar",
            f"{calendar!r}: a systemd calendar expression (e.g. daily, Sun *-*-* 04:30:00) or off",
        )
        calendar = ""
    sample = value.get("sample", int(DEFAULT_DRILL["sample"]))
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= 10_000:
        problems.problem(f"{where}.sample", f"{sample!r}: mailboxes per drill, 0 (all) to 10000")
        sample = 5
    return calendar, sample


def load_backup(value: object, problems: Reader) -> BackupSpec | None:
    """The backup settings, or None when the inventory has none (no backup unit)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.problem(
            FIELD, "must be a mapping with target, password, interval, keep (see the docs)"
        )
        return None
    for key in sorted(set(value) - KNOWN):
        problems.problem(f"{FIELD}.{key}", f"unknown setting (known: {', '.join(sorted(KNOWN))})")
    target = parse_target(value.get("target"), problems)
    password = _secret(value, "password", problems, "(the repository password)")
    interval = parse_span(value.get("interval", "1h"))
    on_clock = {m * 60 for m in CLOCK_MINUTES} | {h * 3600 for h in CLOCK_HOURS}
    if interval is None or interval not in on_clock:
        problems.problem(
            f"{FIELD}.interval",
            f"{value.get('interval')!r}: one of 5, 10, 15, 20, 30min or 1, 2, 3, 4, 6, 8, 12, "
            "24h (backups run on the clock)",
        )
        interval = 3600
    max_age = parse_span(value.get("max_age", f"{(2 * interval + 900) // 60}min"))
    if max_age is None or max_age <= interval:
        problems.problem(
            f"{FIELD}.max_age",
            f"{value.get('max_age')!r}: a time span longer than the interval (e.g. 3h)",
        )
        max_age = 2 * interval + 900
    keep = _keep(value.get("keep"), problems)
    ssh_key = known = None
    s3_id = s3_secret = None
    if target is not None and target.kind == "sftp":
        ssh_key = _secret(value, "ssh_key", problems, "for an sftp target (the hosts' SSH key)")
        known = value.get("ssh_known_hosts")
        if not isinstance(known, str) or not _KNOWN_HOST.match(known.strip()):
            problems.problem(
                f"{FIELD}.ssh_known_hosts",
                "required for an sftp target: the target's host key as one known_hosts line "
                "(HOST ssh-ed25519 AAAA...); host keys are pinned, never learnt",
            )
            known = ""
    if target is not None and target.kind == "s3":
        s3_id = _secret(value, "s3_access_key_id", problems, "for an s3 target")
        s3_secret = _secret(value, "s3_secret_access_key", problems, "for an s3 target")
    if target is None or password is None:
        return None
    drill_calendar, drill_sample = _drill(value.get("drill"), problems)
    return BackupSpec(
        drill_calendar=drill_calendar,
        drill_sample=drill_sample,
        target=target,
        password=password,
        interval_s=interval,
        max_age_s=max_age,
        keep=keep,
        ssh_key=ssh_key,
        ssh_known_hosts=(known or "").strip(),
        s3_access_key_id=s3_id,
        s3_secret_access_key=s3_secret,
    )
