"""The journal shared by the loop, the API and the canary threads (issue 11, deliverable 7)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.controller.journal import Journal

THREADS, WRITES = 8, 150
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_writes_from_many_threads_all_land_and_none_raises(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(WRITES):
                journal.record(NOW, "decision", f"t{n}", "none", f"write {i}", {"i": i})
                journal.put(f"thread.{n}", str(i))
                journal.start_run(NOW, f"run-{n}-{i}", "failover", "mx1", "mx2")
                journal.finish_run(NOW, f"run-{n}-{i}", "done")
                journal.get(f"thread.{(n + 1) % THREADS}")
                journal.last_decision()
        except BaseException as exc:  # collected: a raise in a thread is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = journal.events(limit=THREADS * WRITES + 10)
    assert len(events) == THREADS * WRITES
    for n in range(THREADS):
        mine = [e.evidence["i"] for e in events if e.subject == f"t{n}"]
        assert mine == list(range(WRITES))  # each thread's writes, in its order
        assert journal.get(f"thread.{n}") == str(WRITES - 1)
    runs = journal.runs()
    assert len(runs) == THREADS * WRITES and {r.status for r in runs} == {"done"}
    journal.close()
    reopened = Journal(tmp_path / "journal.db")  # all of it committed, not only cached
    assert len(reopened.events(limit=THREADS * WRITES + 10)) == THREADS * WRITES
