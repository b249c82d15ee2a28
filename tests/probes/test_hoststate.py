"""Host-state parsers on output captured from the lab hosts (tests/probes/captured/)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.probes.hoststate import (
    HostState,
    parse_df,
    parse_host_state,
    parse_postqueue,
    parse_replicator,
    split_sections,
    state_script,
)
from orchestrator.probes.settings import HostLimits

CAPTURED = Path(__file__).parent / "captured"
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

# One deferred message, as `postqueue -j` printed it on mx1 (captured 2026-11-28).
QUEUED = (
    '{"queue_name": "deferred", "queue_id": "E1B1517264E", "arrival_time": 1795851565, '
    '"message_size": 301, "forced_expire": false, "sender": "probe@example.test", '
    '"recipients": [{"address": "nobody@unreachable.invalid", "delay_reason": "Host or '
    "domain name not found. Name service error for name=unreachable.invalid type=MX: Host "
    'not found, try again"}]}'
)


DF_NEARLY_FULL = (
    "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vdb 1000 960 40 96% /var/vmail\n"
)


DF_NEARLY_FULL = (
    "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vdb 1000 960 40 96% /var/vmail\n"
)


def _captured(name: str) -> str:
    return (CAPTURED / name).read_text()


def test_healthy_host_has_every_fact_and_no_problem() -> None:
    state = parse_host_state(_captured("host-state-mx1-healthy.txt"), NOW)
    assert state.daemons == {"postfix": "running", "dovecot": "running"}
    assert state.replicator is not None
    assert (state.replicator.users, state.replicator.failed_users) == (3, ())
    assert state.replicator.waiting_failed == 0
    assert state.queue is not None and (state.queue.size, state.queue.oldest_age) == (0, 0.0)
    assert state.volume is not None and state.volume.mount == "/"
    assert 31 < state.volume.free_percent < 32
    assert state.unreadable == {}
    assert state.problems(HostLimits()) == []


def test_killed_postfix_is_reported_and_the_queue_still_read() -> None:
    state = parse_host_state(_captured("host-state-mx2-postfix-killed.txt"), NOW)
    assert state.daemons == {"postfix": "absent", "dovecot": "running"}
    assert state.queue is not None and state.queue.size == 0  # postqueue read it directly
    assert state.problems(HostLimits()) == ["postfix is not running"]


def test_stopped_daemons_are_named_and_hung_commands_do_not_hide_them() -> None:
    state = parse_host_state(_captured("host-state-mx2-daemons-stopped.txt"), NOW)
    assert state.daemons == {"postfix": "stopped", "dovecot": "stopped"}
    assert state.replicator is None and state.queue is None
    assert state.volume is not None
    assert state.problems(HostLimits()) == [
        "postfix is stopped (SIGSTOP)",
        "dovecot is stopped (SIGSTOP)",
        "cannot read replicator: no answer within the command's time limit (hung daemon?)",
        "cannot read replicator-users: no answer within the command's time limit (hung daemon?)",
        "cannot read postqueue: no answer within the command's time limit (hung daemon?)",
    ]


def test_queue_size_and_oldest_age_from_postqueue_json() -> None:
    arrival = datetime.fromtimestamp(1795851565, UTC)
    now = arrival.replace(hour=arrival.hour + 2)
    queue = parse_postqueue(QUEUED + "\n" + QUEUED.replace("1795851565", "1795855165"), now)
    assert (queue.size, queue.deferred) == (2, 2)
    assert queue.oldest_age == pytest.approx(7200)


def test_old_queue_full_disk_and_failed_replication_are_problems() -> None:
    state = HostState(
        replicator=parse_replicator(
            "Total number of known users\t2",
            "username\tpriority\tfast sync\tfull sync\tsuccess sync\tfailed\n"
            "a@x.test\tnone\t00:00:01\t00:10:00\t00:00:01\t-\n"
            "b@x.test\thigh\t00:00:01\t00:10:00\t01:02:03\ty\n",
        ),
        queue=parse_postqueue(QUEUED, datetime.fromtimestamp(1795851565 + 7200, UTC)),
        volume=parse_df(DF_NEARLY_FULL),
        daemons={"postfix": "running", "dovecot": "running"},
    )
    assert state.replicator is not None
    assert state.replicator.oldest_success_age == 3723
    assert state.problems(HostLimits()) == [
        "replication failing for b@x.test",
        "oldest queued message waiting 7200 s",
        "/var/vmail has 4.0% free",
    ]


def test_a_command_that_failed_is_named_not_fatal() -> None:
    output = _captured("host-state-mx1-healthy.txt").replace(
        "### rc replicator 0", "### rc replicator 75"
    )
    state = parse_host_state(output, NOW)
    assert state.replicator is None
    assert "replicator" in state.unreadable
    assert state.problems(HostLimits())[0].startswith("cannot read replicator: exit 75")


def test_truncated_output_marks_the_missing_sections() -> None:
    text = _captured("host-state-mx1-healthy.txt")
    state = parse_host_state(text[: text.index("### volume")], NOW)
    assert set(state.unreadable) == {"volume"}
    assert state.queue is not None


def test_script_sections_match_the_parser() -> None:
    script = state_script("/srv/mail dir")
    assert "df -P -B1 '/srv/mail dir'" in script
    assert "timeout -s KILL 2 sh -c 'if [ -x /usr/local/sbin/mxctl-dsync ]" in script
    fake = "".join(f"### {n}\nx\n### rc {n} 0\n" for n in ("a", "b"))
    assert split_sections(fake)["b"].text == "x"
