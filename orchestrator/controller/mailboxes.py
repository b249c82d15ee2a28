"""Are the two hosts' mailboxes the same? `doveadm mailbox status` on both, compared.

Replication (2.3's replicator or 2.4's mxctl-dsync, both dsync) keeps mailbox GUIDs and
UIDs equal on both sides, so a standby holds
everything a primary had when its mailbox has the same GUID and at least the same UIDNEXT.
HIGHESTMODSEQ is per replica and is not compared. Parsing and comparing are pure; the
SSH round trip is separate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.deploy.hostfiles import REPLICATION_RESYNC
from orchestrator.errors import MxctlError
from orchestrator.remote import SshTarget, run_remote

FIELDS = ("messages", "uidnext", "guid")
STATUS_COMMAND = f"doveadm -f tab mailbox status -A '{' '.join(FIELDS)}' '*'"
RESYNC_COMMAND = f"{{ {REPLICATION_RESYNC}; }} >/dev/null"
# Dovecot 2.3's two-way replication can deadlock when both hosts take changes for the same
# user at once (as during a planned switch): each side's remote dsync session holds its
# host's sync lock and waits for the other, and neither ends (seen for minutes in the lab).
# A dsync session older than the 30 s lock timeout is stuck: kill it and sync again.
STUCK_SESSION_AGE = 35
KILL_STUCK_SESSIONS = (
    'for p in $(pgrep -f "^dovecot/doveadm-server"); do '
    'age=$(ps -o etimes= -p "$p" | tr -d " "); '
    f'[ -n "$age" ] && [ "$age" -gt {STUCK_SESSION_AGE} ] && kill -9 "$p" && echo "$p"; '
    "done; "
)
UNSTICK_COMMAND = KILL_STUCK_SESSIONS + RESYNC_COMMAND

MailboxKey = tuple[str, str]  # (user, mailbox)


@dataclass(frozen=True)
class MailboxState:
    messages: int
    uidnext: int
    guid: str


def parse_status(text: str) -> dict[MailboxKey, MailboxState]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    header = [h.lower() for h in lines[0].split("\t")]
    try:
        user_i, box_i = header.index("username"), header.index("mailbox")
        idx = {name: header.index(name) for name in FIELDS}
    except ValueError:
        raise MxctlError(f"unexpected `doveadm mailbox status` header: {lines[0]!r}") from None
    states = {}
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) != len(header):
            continue
        states[(cols[user_i], cols[box_i])] = MailboxState(
            int(cols[idx["messages"]]), int(cols[idx["uidnext"]]), cols[idx["guid"]]
        )
    return states


def behind(
    primary: Mapping[MailboxKey, MailboxState], standby: Mapping[MailboxKey, MailboxState]
) -> list[str]:
    """One line per mailbox of the primary that the standby does not fully hold.

    Mail keeps arriving while we look, so the primary is read first and the standby a
    moment later: the standby is caught up when, for every mailbox, it has the same GUID
    and at least the UIDNEXT the primary had (replication keeps UIDs equal on both).
    """
    problems = []
    for key in sorted(primary):
        user, box = key
        have, want = standby.get(key), primary[key]
        if have is None:
            problems.append(f"{user} {box}: missing on the standby")
        elif have.guid != want.guid:
            problems.append(f"{user} {box}: a different mailbox on each host (GUIDs differ)")
        elif have.uidnext < want.uidnext:
            problems.append(
                f"{user} {box}: {want.uidnext - have.uidnext} message(s) behind "
                f"(uidnext {have.uidnext} < {want.uidnext})"
            )
        elif have.uidnext == want.uidnext and have.messages != want.messages:
            # Same UIDs handed out on both, yet a different count: the two sides diverged
            # (a message or an expunge that one side never passed on), whichever is ahead.
            problems.append(
                f"{user} {box}: diverged ({have.messages} message(s) on the standby, "
                f"{want.messages} on the primary at the same uidnext {want.uidnext})"
            )
    return problems


def mailbox_states(target: SshTarget, timeout: float = 15.0) -> dict[MailboxKey, MailboxState]:
    result = run_remote(target, STATUS_COMMAND, timeout)
    if result.exit_code != 0:
        raise MxctlError(f"{target.name}: doveadm mailbox status failed: {result.stderr.strip()}")
    return parse_status(result.stdout)


def resync(target: SshTarget, timeout: float = 15.0) -> None:
    result = run_remote(target, RESYNC_COMMAND, timeout)
    if result.exit_code != 0:
        raise MxctlError(f"{target.name}: resync of every user failed: {result.stderr}")


def kill_stuck_sessions(target: SshTarget, timeout: float = 15.0) -> list[int]:
    """Kill replication sessions older than STUCK_SESSION_AGE (no resync); the pids killed."""
    result = run_remote(target, KILL_STUCK_SESSIONS, timeout)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def unstick(target: SshTarget, timeout: float = 15.0) -> list[int]:
    """Kill stuck replication sessions (see UNSTICK_COMMAND) and resync; the pids killed."""
    result = run_remote(target, UNSTICK_COMMAND, timeout)
    return [int(p) for p in result.stdout.split() if p.isdigit()]
