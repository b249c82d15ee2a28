"""The decisions of mxctl-dsync, pure (no I/O, no clock): tested from tables.

- `changed_user`: which user's mailbox an event exported by Dovecot says has changed;
- `judge`: whether a user may be synced, from both hosts' INBOX GUIDs (different GUIDs
  are two different mailboxes: refuse, and leave both sides as they are);
- `sync_argv`: the one doveadm command the service runs, always a two-way `sync`;
- `SyncQueue`: users waiting to be synced, prompt ones first, never one user twice at once;
- `SyncBook`: per-user history (last success, failures, refusals) and retry backoff;
- `render_summary` / `render_users`: that state in the format of Dovecot 2.3's
  `doveadm -f tab replicator status [*]`, so the probes and the controller read a 2.4 host
  exactly as they read a 2.3 one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# IMAP commands that never change a mailbox (Dovecot's exporter filter leaves most of them
# out already; this is the authority). FETCH stays out of this list: it may set \Seen.
READ_ONLY_COMMANDS = frozenset(
    {
        "NOOP", "IDLE", "CAPABILITY", "LOGOUT", "ID", "NAMESPACE", "LIST", "LSUB", "STATUS",
        "SELECT", "EXAMINE", "SEARCH", "UID SEARCH", "CHECK", "ENABLE", "GETMETADATA",
        "GETQUOTA", "GETQUOTAROOT", "MYRIGHTS", "GETACL", "LISTRIGHTS", "COMPRESS", "UNSELECT",
        "ESEARCH", "NOTIFY", "STARTTLS", "AUTHENTICATE", "LOGIN",
    }
)  # fmt: skip
DELIVERY_EVENTS = frozenset({"mail_delivery_finished"})
IMAP_EVENT = "imap_command_finished"

RETRY_FIRST = 0.5  # seconds before the first retry of a failed sync (most are stalls)
RETRY_CAP = 30.0  # longest wait between retries (a healed partition converges within it)


def changed_user(event: Mapping[str, Any]) -> str | None:
    """The user whose mail an exported event changed, or None (read-only, failed, foreign).

    Events come as Dovecot's json format: {"event": NAME, "fields": {...}}; the `user` field
    is inherited from the session's mail_user event.
    """
    name = event.get("event")
    fields = event.get("fields")
    if not isinstance(fields, Mapping):
        return None
    user = fields.get("user")
    if not isinstance(user, str) or not user or any(c in user for c in "\t\n\r"):
        return None
    if name in DELIVERY_EVENTS:
        return None if fields.get("error") else user
    if name == IMAP_EVENT:
        command = str(fields.get("cmd_name") or fields.get("name") or "").upper()
        if not command or command in READ_ONLY_COMMANDS:
            return None
        if str(fields.get("tagged_reply_state", "OK")).upper() not in ("OK", ""):
            return None  # NO/BAD: nothing changed
        return user
    return None


@dataclass(frozen=True)
class Judgement:
    user: str
    sync: bool
    reason: str
    create_inbox: bool = False  # create the INBOX here first, then sync it to the peer


def judge(
    user: str,
    local: str | None,
    peer: str | None,
    local_name: str,
    peer_name: str,
    seeder: bool = False,
) -> Judgement:
    """May `user` be synced, given each host's INBOX GUID (None: that host has no INBOX)?

    Two INBOXes with different GUIDs are two different mailboxes. A one-way `backup` would
    wipe one; even a two-way sync has to pick a winner. Neither is ours to decide: refuse,
    name the user, touch nothing, and let an operator choose.

    A user with no INBOX anywhere gets one from the `seeder` (one host of the pair, by
    name), synced at once to the other: otherwise the first login or delivery on each host
    would create one there, with GUIDs of their own, and the user could never be synced.
    """
    if local is None and peer is None:
        if seeder:
            return Judgement(
                user, True, f"no INBOX yet: created on {local_name}, then synced", True
            )
        return Judgement(user, False, f"no INBOX yet: {peer_name} creates it")
    if local is None or peer is None:
        have, lack = (peer_name, local_name) if local is None else (local_name, peer_name)
        return Judgement(user, True, f"INBOX only on {have}: the sync creates it on {lack}")
    if local == peer:
        return Judgement(user, True, SAME_INBOX)
    return Judgement(
        user,
        False,
        f"REFUSED: INBOX GUIDs differ ({local_name} {local}, {peer_name} {peer}): two "
        "different mailboxes; neither host was touched. Keep one: move the other host's "
        "mail aside (doveadm backup to a file, or copy), delete its INBOX, then "
        "`mxctl-dsync sync USER`",
    )


SAME_INBOX = "same INBOX on both hosts"
SWEEP_VERIFIED = f"sweep: {SAME_INBOX} (verified)"
SWEEP_CHECK = "sweep: INBOX GUIDs to compare"
REVERIFY_AFTER = 3600.0  # seconds a one-INBOX verification stands for sweeps


def needs_guid_check(reason: str) -> bool:
    """Whether a queued sync must compare INBOX GUIDs first: all but a sweep's sync of a
    user verified within REVERIFY_AFTER (an INBOX cannot be deleted, so two INBOXes with one
    GUID stay one mailbox; the hour bounds what a wiped and recreated one could do)."""
    return reason != SWEEP_VERIFIED


def is_seeder(local_name: str, peer_name: str) -> bool:
    """The host that creates INBOXes no host has yet: the first of the pair by name."""
    return local_name < peer_name


def sync_argv(
    user: str, peer_fqdn: str, port: int, lock_timeout: int = 10, stall: int = 2
) -> list[str]:
    """The doveadm command syncing `user` with the peer: two-way, over TLS, locked.

    Never `backup` or `sync -1` (one-way): on two different INBOXes a one-way run empties
    one side, and the next two-way sync carries the deletions back (seen on 2.4.1).
    `-T stall`: a session that stops moving for that long ends in an error and a quick
    retry. Dovecot 2.4.1's dsync over TLS (tcps) stalls now and then when an IMAP session
    on the peer has the mailbox open: 5 of 40 syncs in the lab, 0 of 40 over plain tcp or
    with the IMAP session on this side; without -T a stalled sync hung until killed."""
    return [
        "doveadm", "sync", "-u", user, "-l", str(lock_timeout), "-T", str(stall),
        f"tcps:{peer_fqdn}:{port}",
    ]  # fmt: skip


def parse_guids(text: str) -> dict[str, str]:
    """{user: INBOX GUID} from `doveadm -f tab mailbox status [-u USER|-A] guid '*'`.

    Without -A there is no user column: the one user is keyed "". Users without an INBOX
    are absent (the mask lists only mailboxes that exist)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    header = [h.strip().lower() for h in lines[0].split("\t")]
    if "guid" not in header or "mailbox" not in header:
        raise ValueError(f"no mailbox/guid columns in doveadm's output: {lines[0]!r}")
    guid_i, box_i = header.index("guid"), header.index("mailbox")
    user_i = header.index("username") if "username" in header else None
    guids: dict[str, str] = {}
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) != len(header) or cols[box_i] != "INBOX" or not cols[guid_i].strip():
            continue
        user = cols[user_i].strip() if user_i is not None else ""
        guids[user] = cols[guid_i].strip()
    return guids


class SyncQueue:
    """Users waiting for a sync. Prompt requests (a mailbox changed) go before sweep ones;
    a user is never handed out twice at once, and a change that arrives while the user's
    sync runs queues one more sync after it (that sync may have missed it)."""

    def __init__(self) -> None:
        self.prompt: OrderedDict[str, str] = OrderedDict()
        self.sweep: OrderedDict[str, str] = OrderedDict()
        self.running: set[str] = set()
        self.dirty: set[str] = set()

    def push(self, user: str, reason: str, prompt: bool = True) -> None:
        if user in self.running:
            self.dirty.add(user)
        elif prompt:
            self.sweep.pop(user, None)
            self.prompt.setdefault(user, reason)
        elif user not in self.prompt:
            self.sweep.setdefault(user, reason)

    def take(self) -> tuple[str, str] | None:
        for lane in (self.prompt, self.sweep):
            if lane:
                user, reason = lane.popitem(last=False)
                self.running.add(user)
                return user, reason
        return None

    def done(self, user: str) -> None:
        self.running.discard(user)
        if user in self.dirty:
            self.dirty.discard(user)
            self.prompt.setdefault(user, "changed while it was being synced")

    def __len__(self) -> int:
        return len(self.prompt) + len(self.sweep)


@dataclass
class UserRecord:
    last_success: float | None = None
    last_attempt: float | None = None
    failures: int = 0  # consecutive failed syncs
    last_error: str = ""
    refused: str = ""  # non-empty while the user is refused (GUID mismatch): why
    retry_at: float | None = None
    verified_at: float | None = None  # when both INBOX GUIDs were last found equal


def retry_delay(failures: int) -> float:
    """Seconds to wait after the `failures`-th consecutive failure: 0.5, 1, 2 ... 30."""
    return float(min(RETRY_CAP, RETRY_FIRST * 2.0 ** max(0, failures - 1)))


@dataclass
class SyncBook:
    users: dict[str, UserRecord] = field(default_factory=dict)

    def record(self, user: str) -> UserRecord:
        return self.users.setdefault(user, UserRecord())

    def succeeded(self, user: str, now: float) -> None:
        rec = self.record(user)
        rec.last_attempt = rec.last_success = now
        rec.failures, rec.last_error, rec.refused, rec.retry_at = 0, "", "", None

    def failed(self, user: str, now: float, error: str, jitter: float = 1.0) -> float:
        """Note a failed sync; returns when to retry it. `jitter` scales the backoff: both
        hosts syncing one user at once can time out on each other's lock, and retries at
        the same moments would collide again."""
        rec = self.record(user)
        rec.last_attempt = now
        rec.failures += 1
        rec.last_error = " ".join(error.split())[:300]
        rec.retry_at = now + retry_delay(rec.failures) * jitter
        return rec.retry_at

    def refuse(self, user: str, now: float, why: str) -> None:
        rec = self.record(user)
        rec.last_attempt = now
        rec.refused, rec.retry_at, rec.verified_at = why, None, None

    def verified(self, user: str, now: float) -> None:
        self.record(user).verified_at = now

    def sweep(self, users: Iterable[str], now: float) -> list[tuple[str, str]]:
        """(user, reason) for each user a sweep queues: a recent verification spares the
        GUID check, everyone else (new, one-sided, refused, stale) is compared first."""
        queued = []
        for user in sorted(users):
            rec = self.users.get(user)
            fresh = (
                rec is not None
                and not rec.refused
                and rec.verified_at is not None
                and now - rec.verified_at < REVERIFY_AFTER
            )
            queued.append((user, SWEEP_VERIFIED if fresh else SWEEP_CHECK))
        return queued

    def keep_only(self, users: Iterable[str]) -> list[str]:
        """Forget users no longer in the userdb (a sweep lists them); returns those dropped."""
        current = set(users)
        gone = sorted(u for u in self.users if u not in current)
        for user in gone:
            del self.users[user]
        return gone

    def due(self, now: float) -> list[str]:
        """Failed users whose retry time has come."""
        return sorted(
            u for u, r in self.users.items() if r.retry_at is not None and r.retry_at <= now
        )

    def failing(self) -> list[str]:
        return sorted(u for u, r in self.users.items() if r.failures or r.refused)

    def to_dict(self) -> dict[str, Any]:
        return {u: asdict(r) for u, r in sorted(self.users.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncBook:
        known = set(UserRecord.__dataclass_fields__)
        return cls(
            {u: UserRecord(**{k: v for k, v in r.items() if k in known}) for u, r in data.items()}
        )


def hms(seconds: float | None) -> str:
    """An age as doveadm prints it (HH:MM:SS; "-" for never)."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def render_summary(book: SyncBook, queue: SyncQueue, now: float) -> str:
    """`doveadm -f tab replicator status` as Dovecot 2.3 prints it."""
    waiting = sum(1 for r in book.users.values() if r.retry_at is not None and r.retry_at > now)
    rows = [
        ("Queued 'sync' requests", len(queue.prompt)),
        ("Queued 'high' requests", 0),
        ("Queued 'low' requests", len(queue.sweep)),
        ("Queued 'failed' requests", len(book.due(now))),
        ("Queued 'full resync' requests", 0),
        ("Waiting 'failed' requests", waiting),
        ("Total number of known users", len(book.users)),
    ]
    return "field\tvalue\n" + "".join(f"{k}\t{v}\n" for k, v in rows)


def render_users(book: SyncBook, queue: SyncQueue, now: float) -> str:
    """`doveadm -f tab replicator status '*'` as 2.3 prints it, plus why a user fails."""
    lines = ["username\tpriority\tfast sync\tfull sync\tsuccess sync\tfailed\terror"]
    for user, rec in sorted(book.users.items()):
        priority = "high" if user in queue.prompt else "low" if user in queue.sweep else "none"
        attempt = None if rec.last_attempt is None else now - rec.last_attempt
        success = None if rec.last_success is None else now - rec.last_success
        failed = "y" if rec.failures or rec.refused else "-"
        error = (rec.refused or rec.last_error or "-").replace("\t", " ")
        lines.append(
            f"{user}\t{priority}\t{hms(attempt)}\t{hms(attempt)}\t{hms(success)}\t{failed}\t{error}"
        )
    return "\n".join(lines) + "\n"
