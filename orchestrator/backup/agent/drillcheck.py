"""Pure verdicts of a restore drill: one mailbox's backup against the live store."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class MailboxVerdict:
    user: str
    mailbox: str
    in_manifest: int | None  # messages the backup's manifest lists (None: unreadable)
    restored: int  # messages restored from it
    live_before: int  # live messages saved before the backup began
    matched: int  # of those, found in the backup with identical bytes
    missing: int  # saved before the backup, absent from it (or altered)
    deleted_since: int  # in the backup, no longer live (a user's deletion: not a failure)
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        listed = self.in_manifest is None or self.restored == self.in_manifest
        return not self.errors and self.missing == 0 and listed

    def why(self) -> str:
        if self.errors:
            # a message that cannot be restored says more than one of Dovecot's index files
            messages = [e for e in self.errors if "/cur/" in e or "/new/" in e]
            return f"restore failed ({len(self.errors)} errors): {(messages or self.errors)[0]}"
        if self.in_manifest is not None and self.restored != self.in_manifest:
            return f"restored {self.restored} messages, the backup listed {self.in_manifest}"
        if self.missing:
            return f"{self.missing} messages saved before the backup are missing or altered in it"
        return f"{self.matched}/{self.live_before} messages identical"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "why": self.why()}


def verdict(
    user: str,
    mailbox: str,
    in_manifest: int | None,
    backup: Counter[str],
    live: list[tuple[str, int]],
    staged_at: int,
    errors: list[str],
) -> MailboxVerdict:
    before = Counter(key for key, saved in live if saved < staged_at)
    matched = before & backup
    missing = before - backup
    deleted = backup - Counter(key for key, _ in live)
    return MailboxVerdict(
        user=user,
        mailbox=mailbox,
        in_manifest=in_manifest,
        restored=sum(backup.values()),
        live_before=sum(before.values()),
        matched=sum(matched.values()),
        missing=sum(missing.values()),
        deleted_since=sum(deleted.values()),
        errors=tuple(errors),
    )


def sample(mailboxes: list[tuple[str, str]], size: int, seed: int) -> list[tuple[str, str]]:
    """A reproducible sample: `size` mailboxes (0 or more than there are: all)."""
    import random

    ordered = sorted(mailboxes)
    if size <= 0 or size >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, size))
