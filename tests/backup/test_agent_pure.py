"""The agent's pure decisions: who backs up, and a drill's verdict per mailbox."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from orchestrator.backup.agent import drillcheck, mailstore
from orchestrator.backup.agent.primary import decide_role

ME = "mx1.example.test"


@pytest.mark.parametrize(
    ("mx", "fenced", "primary", "why"),
    [
        ([(10, "mx1.example.test.")], False, True, "MX names mx1.example.test"),
        ([(10, "MX1.example.test.")], False, True, "MX names"),
        ([(10, "mx2.example.test.")], False, False, "not mx1.example.test"),
        ([(10, "mx1.example.test.")], True, False, "fenced"),
        ([(20, "mx1.example.test."), (10, "mx2.example.test.")], False, False, "mx2"),
        ([(10, "mx1.example.test."), (10, "mx2.example.test.")], False, True, "MX names"),
        ([], False, False, "no MX"),
    ],
)
def test_only_the_host_the_mx_names_backs_up(
    mx: list[tuple[int, str]], fenced: bool, primary: bool, why: str
) -> None:
    role = decide_role(ME, mx, fenced)
    assert role.primary is primary and why in role.why


def keys(*names: str) -> Counter[str]:
    return Counter(names)


@pytest.mark.parametrize(
    ("manifest", "backup", "live", "errors", "ok", "why"),
    [
        (2, keys("a", "b"), [("a", 5), ("b", 6)], [], True, "2/2 messages identical"),
        # a message arriving after staging began is not expected in the backup
        (2, keys("a", "b"), [("a", 5), ("b", 6), ("c", 50)], [], True, "2/2"),
        # a user deleted one since: not the backup's fault
        (2, keys("a", "b"), [("a", 5)], [], True, "1/1"),
        # an old message the backup lacks (or holds altered): fail
        (2, keys("a", "x"), [("a", 5), ("b", 6)], [], False, "1 messages saved before"),
        # restic could not restore something
        (2, keys("a"), [("a", 5), ("b", 6)], ["ciphertext verification failed"], False,
         "restore failed (1 errors): ciphertext"),
        # fewer files came back than the manifest listed
        (3, keys("a", "b"), [("a", 5), ("b", 6)], [], False, "the backup listed 3"),
        # the manifest was unreadable: the tree still lists the mailbox, counts unknown
        (None, keys("a", "b"), [("a", 5), ("b", 6)], [], True, "2/2"),
        # duplicates count: two identical old messages, one in the backup
        (1, keys("a"), [("a", 5), ("a", 6)], [], False, "1 messages saved before"),
    ],
)  # fmt: skip
def test_drill_verdict(
    manifest: int | None,
    backup: Counter[str],
    live: list[tuple[str, int]],
    errors: list[str],
    ok: bool,
    why: str,
) -> None:
    v = drillcheck.verdict("alice@example.test", "INBOX", manifest, backup, live, 10, errors)
    assert v.ok is ok and why in v.why(), v.why()
    assert v.as_dict()["ok"] is ok


def test_sample_is_reproducible_and_bounded() -> None:
    boxes = [(f"u{i}", "INBOX") for i in range(10)]
    assert drillcheck.sample(boxes, 0, 1) == sorted(boxes)
    assert drillcheck.sample(boxes, 3, 7) == drillcheck.sample(boxes, 3, 7)
    assert len(drillcheck.sample(boxes, 3, 7)) == 3
    assert drillcheck.sample(boxes, 30, 7) == sorted(boxes)


def test_message_identity_ignores_line_ending_style() -> None:
    assert mailstore.message_key(b"a\r\nb\r\n") == mailstore.message_key(b"a\nb\n")
    assert mailstore.message_key(b"a\nb\n") != mailstore.message_key(b"a\nc\n")


def test_second_restore_drops_what_the_destination_holds(tmp_path: Path) -> None:
    box = tmp_path / "INBOX"
    (box / "cur").mkdir(parents=True)
    (box / "new").mkdir()
    for i, body in enumerate([b"one\n", b"two\n", b"two\n", b"three\n"]):
        (box / "cur" / f"{i}.host:2,S").write_bytes(body)
    (box / "dovecot-uidlist").write_text("3 V1 N5\n")
    present = Counter([mailstore.message_key(b"two\n"), mailstore.message_key(b"one\n")])
    kept, dropped = mailstore.drop_already_present(box, present)
    assert (kept, dropped) == (2, 2)  # one "two" was there once: the second copy stays
    left = sorted(p.read_bytes() for p in mailstore.maildir_files(box))
    assert left == [b"three\n", b"two\n"]
    assert not (box / "dovecot-uidlist").exists()
    assert mailstore.maildir_mailboxes(tmp_path) == ["INBOX"]


# `doveadm -f pager fetch "uid text"` on Dovecot 2.3.19 (lab mx1), one 8-bit message and one
# ending in a blank line, as captured.
PAGER = (
    b"uid: 1\ntext:\nFrom: a@b\nSubject: 8bit\n\nlatin1 \xe9t\xe9 \xff and utf8 \xc3\xa9 ctrl "
    b"\x01\x02 tab\t end\n\f\nuid: 2\ntext:\nFrom: a@b\nSubject: second\n\nbody\n\n"
)


def test_pager_output_splits_into_raw_messages() -> None:
    texts = mailstore._pager_texts(PAGER)
    assert texts is not None and sorted(texts) == [1, 2]
    assert b"\xe9t\xe9 \xff" in texts[1]  # 8-bit bytes intact (JSON output would lose them)
    # the same key as the Maildir file the backup holds (stored with CRLF or LF)
    on_disk = b"From: a@b\r\nSubject: second\r\n\r\nbody\r\n\r\n"
    assert mailstore.message_key(texts[2]) == mailstore.message_key(on_disk)
    assert mailstore._pager_texts(b"") == {}
    assert mailstore._pager_texts(b"uid: 1\ntext:\nA\n\f\nnot a record\n") is None
