"""Mailbox comparison from captured `doveadm mailbox status` output (pure, a table)."""

from __future__ import annotations

from orchestrator.controller.mailboxes import behind, parse_status

PRIMARY = """Username\tmailbox\tmessages\tuidnext\tguid
alice@example.test\tINBOX\t12\t13\t7ab7a4247b860a6b1a11000087ad316d
bob@example.org\tINBOX\t0\t1\tf3ff0c1a7c860a6b2b11000087ad316d
"""


def test_parse_reads_every_mailbox() -> None:
    states = parse_status(PRIMARY)
    assert states[("alice@example.test", "INBOX")].uidnext == 13
    assert states[("bob@example.org", "INBOX")].messages == 0


def test_a_caught_up_standby_may_even_be_ahead() -> None:
    standby = PRIMARY.replace("\t12\t13\t", "\t14\t15\t")  # mail arrived since we looked
    assert behind(parse_status(PRIMARY), parse_status(standby)) == []


def test_a_lagging_standby_is_named_with_how_far_behind() -> None:
    standby = PRIMARY.replace("\t12\t13\t", "\t10\t11\t")
    assert behind(parse_status(PRIMARY), parse_status(standby)) == [
        "alice@example.test INBOX: 2 message(s) behind (uidnext 11 < 13)"
    ]


def test_missing_and_different_mailboxes_are_named() -> None:
    standby = "Username\tmailbox\tmessages\tuidnext\tguid\n" + (
        "alice@example.test\tINBOX\t12\t13\t00000000000000000000000000000000\n"
    )
    assert behind(parse_status(PRIMARY), parse_status(standby)) == [
        "alice@example.test INBOX: a different mailbox on each host (GUIDs differ)",
        "bob@example.org INBOX: missing on the standby",
    ]


def test_two_sides_that_diverged_at_the_same_uidnext_are_named() -> None:
    # The standby has handed out the same UIDs yet holds one message fewer: a message (or
    # an expunge) that one side never passed on. Not caught up, whichever side is right.
    standby = PRIMARY.replace("\t12\t13\t", "\t11\t13\t")
    assert behind(parse_status(PRIMARY), parse_status(standby)) == [
        "alice@example.test INBOX: diverged (11 message(s) on the standby, "
        "12 on the primary at the same uidnext 13)"
    ]
    assert behind(parse_status(standby), parse_status(PRIMARY)) != []  # both directions
