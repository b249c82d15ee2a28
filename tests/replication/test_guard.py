"""mxctl-dsync's decisions, from tables: events, the INBOX GUID guard, the queue, the book,
and the report in Dovecot 2.3's replicator format (read by the same parsers)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import orchestrator.replication
from orchestrator.probes.hoststate import parse_replicator
from orchestrator.replication import guard

A, B = "mx1.example.test", "mx2.example.test"


def imap(cmd: str, state: str = "OK", user: str = "alice@example.test") -> dict[str, Any]:
    fields = {"user": user, "cmd_name": cmd, "tagged_reply_state": state}
    return {"event": "imap_command_finished", "fields": fields}


@pytest.mark.parametrize(
    ("event", "user"),
    [
        ({"event": "mail_delivery_finished", "fields": {"user": "bob@example.org"}},
         "bob@example.org"),
        ({"event": "mail_delivery_finished", "fields": {"user": "b@x.org", "error": "quota"}},
         None),
        (imap("APPEND"), "alice@example.test"),
        (imap("UID STORE"), "alice@example.test"),
        (imap("EXPUNGE"), "alice@example.test"),
        (imap("MOVE"), "alice@example.test"),
        (imap("FETCH"), "alice@example.test"),  # may set \Seen
        (imap("CREATE"), "alice@example.test"),
        (imap("APPEND", state="NO"), None),  # refused: nothing changed
        (imap("NOOP"), None),
        (imap("IDLE"), None),
        (imap("select"), None),  # command names compared case-insensitively
        (imap("UID SEARCH"), None),
        (imap("APPEND", user=""), None),
        (imap("APPEND", user="a\tb@x.org"), None),  # would break the tab report
        ({"event": "imap_command_finished"}, None),
        ({"event": "auth_request_finished", "fields": {"user": "alice@example.test"}}, None),
    ],
)  # fmt: skip
def test_which_events_mean_a_mailbox_changed(event: dict[str, Any], user: str | None) -> None:
    assert guard.changed_user(event) == user


@pytest.mark.parametrize(
    ("local", "peer", "seeder", "sync", "create", "words"),
    [
        ("g1", "g1", False, True, False, "same INBOX"),
        ("g1", None, False, True, False, f"INBOX only on {A}: the sync creates it on {B}"),
        (None, "g2", True, True, False, f"INBOX only on {B}: the sync creates it on {A}"),
        (None, None, True, True, True, f"no INBOX yet: created on {A}, then synced"),
        (None, None, False, False, False, f"no INBOX yet: {B} creates it"),
        ("g1", "g2", False, False, False, f"REFUSED: INBOX GUIDs differ ({A} g1, {B} g2)"),
        ("g1", "g2", True, False, False, "neither host was touched"),
    ],
)
def test_a_user_is_synced_only_when_both_inboxes_are_one_mailbox(
    local: str | None, peer: str | None, seeder: bool, sync: bool, create: bool, words: str
) -> None:
    verdict = guard.judge("alice@example.test", local, peer, A, B, seeder)
    assert (verdict.sync, verdict.create_inbox) == (sync, create)
    assert words in verdict.reason


@pytest.mark.parametrize(
    ("reason", "check"),
    [
        (guard.SWEEP_VERIFIED, False),
        (guard.SWEEP_CHECK, True),
        ("changed (mail_delivery_finished)", True),
        ("requested by an operator", True),
        ("changed while it was being synced", True),
    ],
)
def test_only_a_verified_sweep_sync_skips_the_guid_check(reason: str, check: bool) -> None:
    assert guard.needs_guid_check(reason) is check


def test_exactly_one_host_of_a_pair_seeds_inboxes() -> None:
    assert guard.is_seeder(A, B) != guard.is_seeder(B, A)


def test_a_sweep_compares_guids_except_for_users_verified_within_the_hour() -> None:
    book = guard.SyncBook()
    book.verified("fresh@x", 1000.0)
    book.verified("stale@x", 1000.0 - guard.REVERIFY_AFTER)
    book.verified("refused@x", 1000.0)
    book.refuse("refused@x", 1001.0, "REFUSED: INBOX GUIDs differ")
    users = ["new@x", "stale@x", "fresh@x", "refused@x"]
    assert book.sweep(users, 1000.0 + 10) == [
        ("fresh@x", guard.SWEEP_VERIFIED),
        ("new@x", guard.SWEEP_CHECK),
        ("refused@x", guard.SWEEP_CHECK),
        ("stale@x", guard.SWEEP_CHECK),
    ]
    assert book.users["refused@x"].verified_at is None  # a refusal voids the verification


@pytest.mark.parametrize("user", ["alice@example.test", "bob@example.org"])
def test_the_sync_command_is_always_two_way(user: str) -> None:
    argv = guard.sync_argv(user, B, 12345)
    assert argv[:2] == ["doveadm", "sync"]
    assert "backup" not in argv and "-1" not in argv and "-R" not in argv
    assert argv[-1] == f"tcps:{B}:12345"
    assert argv[argv.index("-u") + 1] == user


@pytest.mark.parametrize(
    ("text", "guids"),
    [
        ("mailbox\tguid\nINBOX\tg1\nSent\tg2\n", {"": "g1"}),
        ("mailbox\tguid\n", {}),  # no mailbox at all (INBOX not created)
        ("mailbox\tguid\nSent\tg2\n", {}),
        ("Username\tmailbox\tguid\na@x.org\tINBOX\tg1\na@x.org\tTrash\tg7\nb@x.org\tINBOX\tg2\n",
         {"a@x.org": "g1", "b@x.org": "g2"}),
        ("", {}),
    ],
)  # fmt: skip
def test_inbox_guids_from_doveadm(text: str, guids: dict[str, str]) -> None:
    assert guard.parse_guids(text) == guids


def test_unexpected_doveadm_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="mailbox/guid"):
        guard.parse_guids("Error: something\n")


def test_queue_prompt_first_never_one_user_twice_and_no_change_missed() -> None:
    q = guard.SyncQueue()
    q.push("sweep@x", "sweep", prompt=False)
    q.push("a@x", "changed")
    q.push("a@x", "changed again")  # coalesced
    assert len(q) == 2
    assert q.take() == ("a@x", "changed")
    q.push("a@x", "changed while running")  # a@x is running: not handed out twice
    assert q.take() == ("sweep@x", "sweep")
    assert q.take() is None
    q.done("a@x")  # ... but synced once more after it ends
    assert q.take() == ("a@x", "changed while it was being synced")
    q.done("a@x")
    q.done("sweep@x")
    assert q.take() is None


def test_a_prompt_request_overtakes_a_queued_sweep_of_the_same_user() -> None:
    q = guard.SyncQueue()
    q.push("a@x", "sweep", prompt=False)
    q.push("a@x", "changed")
    assert (len(q.prompt), len(q.sweep)) == (1, 0)
    q.push("a@x", "sweep", prompt=False)  # already queued, prompt
    assert (len(q.prompt), len(q.sweep)) == (1, 0)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (12, 30.0)],
)
def test_retry_backoff(failures: int, delay: float) -> None:
    assert guard.retry_delay(failures) == delay


def test_book_failures_retries_refusals_and_recovery() -> None:
    book = guard.SyncBook()
    book.succeeded("a@x", 100.0)
    assert book.failed("b@x", 100.0, "exit 75:\tconnect failed\n") == 100.5
    book.refuse("c@x", 100.0, "REFUSED: INBOX GUIDs differ")
    assert book.due(100.4) == [] and book.due(100.5) == ["b@x"]
    assert book.failing() == ["b@x", "c@x"]
    assert book.users["b@x"].last_error == "exit 75: connect failed"
    assert book.failed("b@x", 101.0, "again", jitter=1.5) == 102.5  # 1 s, scaled
    book.succeeded("b@x", 103.0)
    assert book.failing() == ["c@x"]
    again = guard.SyncBook.from_dict(book.to_dict())
    assert again == book
    assert book.keep_only(["a@x", "b@x"]) == ["c@x"]  # c@x left the userdb
    assert sorted(book.users) == ["a@x", "b@x"] and book.failing() == []


def test_the_report_reads_like_dovecot_23s_replicator() -> None:
    book, q = guard.SyncBook(), guard.SyncQueue()
    book.succeeded("alice@example.test", 1000.0)
    book.failed("bob@example.org", 1000.0, "exit 75: connect(mx2) failed")
    book.refuse("carol@example.test", 1000.0, "REFUSED: INBOX GUIDs differ")
    q.push("alice@example.test", "changed")
    q.push("dave@example.test", "sweep", prompt=False)
    now = 1065.0
    summary, users = guard.render_summary(book, q, now), guard.render_users(book, q, now)
    state = parse_replicator(summary, users)
    assert state.users == 3
    assert state.failed_users == ("bob@example.org", "carol@example.test")
    assert state.oldest_success_age == 65.0
    assert state.queued["Queued 'sync' requests"] == 1
    assert state.queued["Queued 'low' requests"] == 1
    assert state.waiting_failed == 0  # bob's retry at 1002 is due, not waiting
    assert "alice@example.test\thigh\t00:01:05" in users
    assert "REFUSED: INBOX GUIDs differ" in users


def test_the_host_side_package_imports_only_the_standard_library() -> None:
    """It runs with the mail host's python3 and nothing else (deployed as mxctl_dsync)."""
    package = Path(orchestrator.replication.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("orchestrator"), module.name
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("orchestrator"), module.name
