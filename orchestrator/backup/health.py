"""Pure: how healthy the pair's backups are, from the agents' state files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class BackupHealth:
    last_good_at: str | None  # ISO time of the newest good backup on either host
    last_good_host: str | None
    age_s: float | None
    max_age_s: int | None
    stale: bool  # no good backup within the policy: alert
    last_error: str | None  # the newest failed attempt's error, if newer than the last good
    drill_result: str | None  # passed | failed | None (never drilled)
    drill_at: str | None
    drill_failed_mailboxes: tuple[str, ...]
    why: str
    configured: bool = True  # False: neither host has the backup agent (no mail_backup)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _time(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _newest(states: Mapping[str, Mapping[str, Any]], key: str) -> tuple[str | None, dict[str, Any]]:
    best: tuple[dt.datetime, str, dict[str, Any]] | None = None
    for host, state in states.items():
        entry = state.get(key)
        when = _time(entry.get("time")) if isinstance(entry, dict) else None
        if when is not None and isinstance(entry, dict) and (best is None or when > best[0]):
            best = (when, host, entry)
    return (best[1], best[2]) if best else (None, {})


def assess(
    states: Mapping[str, Mapping[str, Any]], now: dt.datetime, default_max_age_s: int = 8100
) -> BackupHealth:
    if states and all(s.get("installed") is False for s in states.values()):
        return BackupHealth(
            None,
            None,
            None,
            None,
            False,
            None,
            None,
            None,
            (),
            "not configured (no mail_backup in the inventory)",
            configured=False,
        )
    host, good = _newest(states, "last_good")
    _, attempt = _newest(states, "last_attempt")
    _, drill = _newest(states, "last_drill")
    policies = [int(s["max_age_s"]) for s in states.values() if isinstance(s.get("max_age_s"), int)]
    max_age: int = max(policies) if policies else default_max_age_s
    good_at = _time(good.get("time"))
    age = (now - good_at).total_seconds() if good_at else None
    error = attempt.get("error") if attempt and not attempt.get("ok") else None
    stale = age is None or age > max_age
    if age is None:
        why = "no good backup yet"
    elif stale:
        why = f"last good backup {age / 3600:.1f} h ago on {host}, policy {max_age / 3600:.1f} h"
    else:
        why = f"last good backup {age / 60:.0f} min ago on {host} (policy {max_age / 60:.0f} min)"
    if error:
        why += f"; last attempt failed: {error}"
    unreadable = [h for h, s in states.items() if "error" in s]
    if unreadable:
        why += f"; state unreadable on {', '.join(sorted(unreadable))}"
    return BackupHealth(
        last_good_at=good.get("time"),
        last_good_host=host,
        age_s=None if age is None else round(age, 1),
        max_age_s=max_age,
        stale=stale,
        last_error=error,
        drill_result=drill.get("result"),
        drill_at=drill.get("time"),
        drill_failed_mailboxes=tuple(drill.get("failed_mailboxes", ())),
        why=why,
    )
