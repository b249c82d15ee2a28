"""mxctl-dsync, the daemon: Dovecot's change events in, `doveadm sync` per user out.

Threads: an HTTP listener on loopback (Dovecot's event exporter posts to /event; the
command line asks /status, /users and /sync), `workers` sync workers, and a ticker that
requeues failed users when their backoff ends, starts a sweep of every user every
`sweep_every` seconds, and writes the state file. Every decision is in `guard`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import guard

log = logging.getLogger("mxctl-dsync")
STATE_FILE = Path("/var/lib/mxctl-dsync/state.json")

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {timeout:g} s")


@dataclass(frozen=True)
class Settings:
    host: str  # this host's name (as the peer's certificate must name it too)
    peer: str
    port: int  # the peer's doveadm TLS port
    event_port: int  # loopback port Dovecot posts events to
    sweep_every: float = 300.0
    workers: int = 2
    lock_timeout: int = 10
    # A sync that runs longer is killed and retried. dsync's own stall timeout (-T) does not
    # catch every hang of 2.4.1 (a sync sat idle for minutes in the lab); a first sync of a
    # big mailbox that needs longer progresses over several attempts (dsync commits as it goes).
    command_timeout: float = 60.0
    state_file: Path = STATE_FILE

    @classmethod
    def load(cls, path: Path) -> Settings:
        raw = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {', '.join(unknown)}")
        if "state_file" in raw:
            raw["state_file"] = Path(raw["state_file"])
        return cls(**raw)

    @property
    def peer_destination(self) -> str:
        return f"tcps:{self.peer}:{self.port}"


class Doveadm:
    """The doveadm commands the service runs, here or on the peer (`doveadm -S peer:port`:
    its doveadm server, over TLS with doveadm_password, the peer's certificate checked)."""

    def __init__(self, settings: Settings, run: Runner = run_command) -> None:
        self.settings, self.run = settings, run

    def users(self) -> list[str]:
        result = self.run(["doveadm", "user", "*"], 60)
        if result.returncode != 0:
            raise RuntimeError(f"doveadm user '*' failed: {result.stderr.strip()[:300]}")
        return sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})

    def inbox_guid(self, user: str, remote: bool) -> str | None:
        """The user's INBOX GUID here or on the peer; None when that host has no INBOX.

        The mask '*' lists only mailboxes that exist: naming INBOX would create it (with a
        GUID of its own) on a host that has none yet, and make the two differ."""
        peer = ["-S", f"{self.settings.peer}:{self.settings.port}"] if remote else []
        argv = ["doveadm", "-f", "tab", "mailbox", "status", "-u", user, *peer, "guid", "*"]
        # A fraction of a second normally; over TLS it can stall like dsync (see sync_argv).
        result = self.run(argv, 10)
        if result.returncode != 0:
            where = self.settings.peer if remote else self.settings.host
            raise RuntimeError(f"INBOX GUID on {where}: {result.stderr.strip()[:300]}")
        return guard.parse_guids(result.stdout).get("")

    def create_inbox(self, user: str) -> None:
        """Create the user's INBOX here (opening it creates it), to be synced to the peer."""
        result = self.run(["doveadm", "mailbox", "status", "-u", user, "guid", "INBOX"], 60)
        if result.returncode != 0:
            raise RuntimeError(f"creating {user}'s INBOX: {result.stderr.strip()[:300]}")

    def sync(self, user: str) -> subprocess.CompletedProcess[str]:
        s = self.settings
        argv = guard.sync_argv(user, s.peer, s.port, s.lock_timeout)
        return self.run(argv, s.command_timeout)


class Service:
    def __init__(
        self, settings: Settings, doveadm: Doveadm, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings, self.doveadm, self.clock = settings, doveadm, clock
        self.cond = threading.Condition()
        self.queue = guard.SyncQueue()
        self.book = self._load_book()
        self.stopping = threading.Event()
        self.next_sweep = clock()  # sweep at start: changes made while we were down
        self.dirty = False

    def _load_book(self) -> guard.SyncBook:
        try:
            return guard.SyncBook.from_dict(json.loads(self.settings.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return guard.SyncBook()

    # -- requests -------------------------------------------------------------------------
    def request(self, user: str, reason: str, prompt: bool = True) -> None:
        with self.cond:
            self.queue.push(user, reason, prompt)
            self.cond.notify()

    def event(self, event: dict[str, Any]) -> None:
        user = guard.changed_user(event)
        if user is not None:
            self.request(user, f"changed ({event.get('event')})")

    # -- work ------------------------------------------------------------------------------
    def worker(self) -> None:
        while not self.stopping.is_set():
            with self.cond:
                item = self.queue.take()
                if item is None:
                    self.cond.wait(1.0)
                    continue
            user, reason = item
            try:
                self.sync_one(user, reason)
            except Exception as exc:  # a worker must never die
                log.exception("sync of %s crashed", user)
                with self.cond:
                    self.book.failed(user, self.clock(), f"internal error: {exc}")
            finally:
                with self.cond:
                    self.queue.done(user)
                    self.dirty = True
                    self.cond.notify()

    def sync_one(self, user: str, reason: str) -> None:
        s = self.settings
        if guard.needs_guid_check(reason):
            try:
                local = self.doveadm.inbox_guid(user, remote=False)
                peer = self.doveadm.inbox_guid(user, remote=True)
            except RuntimeError as exc:
                with self.cond:
                    self.book.failed(user, self.clock(), str(exc))
                log.warning("%s: not synced, cannot compare INBOXes: %s", user, exc)
                return
            seeder = guard.is_seeder(s.host, s.peer)
            verdict = guard.judge(user, local, peer, s.host, s.peer, seeder)
        else:
            verdict = guard.Judgement(user, True, reason)
        if not verdict.sync:
            with self.cond:
                if verdict.reason.startswith("REFUSED"):
                    self.book.refuse(user, self.clock(), verdict.reason)
                    log.error("ALERT: %s: %s", user, verdict.reason)
                else:
                    self.book.succeeded(user, self.clock())
            return
        started = self.clock()
        if verdict.create_inbox:
            try:
                self.doveadm.create_inbox(user)
            except RuntimeError as exc:
                with self.cond:
                    self.book.failed(user, self.clock(), str(exc))
                return
        result = self.doveadm.sync(user)
        with self.cond:
            if result.returncode == 0:
                self.book.succeeded(user, self.clock())
                # A two-way sync that ends well leaves one INBOX on both hosts (the same, or
                # created on the side that lacked it): sweeps need not compare it for a while.
                if guard.needs_guid_check(reason):
                    self.book.verified(user, self.clock())
                log.info("%s synced in %.2f s (%s)", user, self.clock() - started, reason)
            else:
                error = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
                why = f"exit {result.returncode}: {error}"
                retry = self.book.failed(user, self.clock(), why, random.uniform(0.6, 1.6))
                log.warning("%s: sync failed (exit %d), retry in %.0f s: %s", user,
                            result.returncode, retry - self.clock(), error[:300])  # fmt: skip

    def sweep(self) -> None:
        """Queue every user of the userdb (after any prompt syncs). Users whose two INBOXes
        were verified as one within the hour are synced at once; the others have their
        GUIDs compared first, one by one, like any prompt sync (listing every user's GUIDs
        in one doveadm call on the peer took over 60 s for 1,000 users)."""
        try:
            users = self.doveadm.users()
        except RuntimeError as exc:
            log.warning("sweep postponed: %s", exc)
            return
        with self.cond:
            self.book.keep_only(users)
            for user, reason in self.book.sweep(users, self.clock()):
                self.queue.push(user, reason, prompt=False)
            self.dirty = True
            self.cond.notify_all()

    def ticker(self) -> None:
        while not self.stopping.wait(0.2):
            now = self.clock()
            with self.cond:
                for user in self.book.due(now):
                    self.book.record(user).retry_at = None
                    self.queue.push(user, "retry after failure")
                self.cond.notify_all()
            if now >= self.next_sweep:
                # A little jitter: the peer sweeps too, and the two should rarely collide.
                self.next_sweep = now + self.settings.sweep_every * random.uniform(0.9, 1.1)
                self.sweep()
            self.save()

    def save(self) -> None:
        with self.cond:
            if not self.dirty:
                return
            data = json.dumps(self.book.to_dict(), indent=1)
            self.dirty = False
        path = self.settings.state_file
        tmp = path.with_suffix(".tmp")
        tmp.write_text(data)
        os.replace(tmp, path)

    # -- reports ---------------------------------------------------------------------------
    def summary(self) -> str:
        with self.cond:
            return guard.render_summary(self.book, self.queue, self.clock())

    def users_table(self) -> str:
        with self.cond:
            return guard.render_users(self.book, self.queue, self.clock())

    def sync_all(self) -> None:
        """Sync every user soon: the ticker starts a sweep (GUIDs compared in one batch,
        INBOXes seeded) at its next tick. Returns at once: a sweep of many users takes
        seconds, and callers (the deploy, the controller) only ask for it. Refused users
        stay refused: only an operator's `sync USER` retries one."""
        with self.cond:
            self.next_sweep = 0.0


def make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/status":
                self._reply(200, service.summary())
            elif self.path == "/users":
                self._reply(200, service.users_table())
            else:
                self._reply(404, "not found\n")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace")
            if self.path == "/event":
                for line in body.splitlines():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        service.event(event)
                self._reply(200, "ok\n")
            elif self.path == "/sync":
                request = json.loads(body or "{}")
                if request.get("all"):
                    service.sync_all()
                    self._reply(200, "sweep of every user requested\n")
                else:
                    users = [str(u) for u in request.get("users", [])]
                    for user in users:
                        with service.cond:
                            service.book.record(user).refused = ""  # the operator decided
                        service.request(user, "requested by an operator")
                    self._reply(200, f"queued {len(users)} users\n")
            else:
                self._reply(404, "not found\n")

    return Handler


def serve(settings: Settings) -> None:
    service = Service(settings, Doveadm(settings))
    server = ThreadingHTTPServer(("127.0.0.1", settings.event_port), make_handler(service))
    server.daemon_threads = True
    threads = [
        threading.Thread(target=service.worker, daemon=True) for _ in range(settings.workers)
    ]
    threads.append(threading.Thread(target=service.ticker, daemon=True))
    for t in threads:
        t.start()
    log.info(
        "mxctl-dsync: %s <-> %s, sweep every %.0f s, %d workers",
        *(settings.host, settings.peer_destination, settings.sweep_every, settings.workers),
    )
    try:
        server.serve_forever()
    finally:
        service.stopping.set()
        service.save()
