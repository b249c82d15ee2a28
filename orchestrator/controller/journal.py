"""The controller's journal: every decision change and every failover step, with evidence.

SQLite in WAL mode, one file. A step is written *before* it acts ("started") and again
after ("done" / "failed"), with synchronous=FULL, so after a crash the journal tells
exactly which steps of which run may have happened; the runner resumes from there.

One Journal is shared by the loop, the HTTP API's threads and the canary thread. sqlite3
connections are not safe to share between threads mid-transaction ("cannot start a
transaction within a transaction"), so every use of the connection holds one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,          -- decision | step | operator | intent | alert
    run_id TEXT,                 -- the failover/switchover run a step belongs to
    subject TEXT NOT NULL,       -- outcome name, step name, or command
    status TEXT NOT NULL,        -- decision: action; step: started|done|failed|skipped
    reason TEXT NOT NULL,        -- one sentence: what and why
    evidence TEXT NOT NULL       -- JSON
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, subject);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- failover | switchover | switchback
    from_host TEXT NOT NULL,
    to_host TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL         -- running | done | aborted
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    id: int
    at: str
    kind: str
    run_id: str | None
    subject: str
    status: str
    reason: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Run:
    run_id: str
    kind: str
    from_host: str
    to_host: str
    started_at: str
    finished_at: str | None
    status: str


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A step journaled as started must survive a power cut before the step acts.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def record(
        self,
        at: datetime,
        kind: str,
        subject: str,
        status: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO events (at, kind, run_id, subject, status, reason, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at.isoformat(), kind, run_id, subject, status, reason,
                 json.dumps(evidence or {}, sort_keys=True, default=str)),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def start_run(self, at: datetime, run_id: str, kind: str, from_host: str, to_host: str) -> None:
        with self._tx() as db:
            # A run taken up again (after a crash, or to finish an aborted one forward)
            # is running again; its start time and hosts stay those of its first start.
            db.execute(
                "INSERT INTO runs (run_id, kind, from_host, to_host, started_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'running') ON CONFLICT(run_id) DO UPDATE SET"
                " status = 'running', finished_at = NULL",
                (run_id, kind, from_host, to_host, at.isoformat()),
            )

    def finish_run(self, at: datetime, run_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?",
                (at.isoformat(), status, run_id),
            )

    def unfinished_run(self) -> Run | None:
        rows = self._query(
            "SELECT * FROM runs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1"
        )
        return Run(*rows[0]) if rows else None

    def runs(self) -> list[Run]:
        return [Run(*r) for r in self._query("SELECT * FROM runs ORDER BY started_at")]

    def step_status(self, run_id: str, step: str) -> str | None:
        """The last status journaled for a step of a run (None: never started)."""
        rows = self._query(
            "SELECT status FROM events WHERE run_id = ? AND subject = ? AND kind = 'step' "
            "ORDER BY id DESC LIMIT 1",
            (run_id, step),
        )
        return str(rows[0][0]) if rows else None

    def events(self, limit: int = 100, run_id: str | None = None) -> list[Event]:
        if run_id is None:
            rows = self._query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                "SELECT * FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit)
            )
        return [_event(r) for r in reversed(rows)]

    def last_decision(self) -> Event | None:
        rows = self._query("SELECT * FROM events WHERE kind = 'decision' ORDER BY id DESC LIMIT 1")
        return _event(rows[0]) if rows else None

    def get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _event(row: tuple[Any, ...]) -> Event:
    id_, at, kind, run_id, subject, status, reason, evidence = row
    return Event(id_, at, kind, run_id, subject, status, reason, json.loads(evidence))
