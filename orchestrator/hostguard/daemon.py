"""The guard's loop: ask DNS, decide, write the table, remember, say why.

Runs as `python3 -m mxctl_hostguard` (the mxctl-guard unit) on each mail host; `--once`
runs one round and exits (the controller's unfence uses it so an unfenced host opens at
once, not a round later). Both hold a lock, so rounds never interleave.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .dnsview import ask_all
from .hostnet import apply_ruleset, link_up, ruleset, self_fence
from .install import LOCK
from .rules import CLOSED, Decision, Identity, PortGroup, Role, Situation, decide, lease_deadline
from .settings import DEFAULT_PATH, GuardSettings, SettingsError, load_settings

log = logging.getLogger("mxctl-guard")


@contextmanager
def _locked(path: str) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_atomic(path: Path, text: str, durable: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_role(path: str) -> Role:
    try:
        return Role(Path(path).read_text().strip())
    except (FileNotFoundError, ValueError):
        return Role.UNKNOWN


def read_open(status_file: str, now_wall: float) -> frozenset[PortGroup]:
    """What the kernel lets through now: the last applied opening, if its lease holds."""
    try:
        status = json.loads(Path(status_file).read_text())
        if now_wall < float(status["lease_until"]):
            return frozenset(PortGroup(g) for g in status["open"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    return CLOSED


class Guard:
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self.me = Identity(settings.fqdn.rstrip(".").lower(), frozenset(settings.addresses))
        self.confirmed_at: float | None = None  # monotonic; a new process knows nothing
        self.named_at: float | None = None
        self.last: Decision | None = None
        self._said = ""
        self._failing: dict[str, str] = {}

    def round(self) -> Decision:
        s = self.settings
        started, started_wall = time.monotonic(), time.time()
        views = ask_all(s.nameservers, s.mx_names, s.client_names, s.timeout)
        answered = any(v.error is None for v in views)
        with _locked(LOCK):
            role = read_role(s.role_file)
            primary = role is Role.PRIMARY
            situation = Situation(
                views=views,
                me=self.me,
                role=role,
                confirmed_at=self.confirmed_at if primary else None,
                fenced=Path(s.fence_marker).exists(),
                link_up=answered or link_up(s.addresses),
                open_now=read_open(s.status_file, time.time()),
                started_at=started,
                lease=s.lease,
                named_at=self.named_at if primary else None,
                propagation=s.propagation,
            )
            decision = decide(situation)
            if decision.self_fence:
                self_fence(s.fence_marker, s.fence_rules, s.fence_unit, decision.reason)
            # Counted from when this round started, for as long as the decision holds (a
            # full lease only on a confirmation).
            deadline = lease_deadline(started_wall, decision.hold)
            apply_ruleset(ruleset(s.table, decision.open, deadline, decision.hold))
            if decision.role not in (role, Role.UNKNOWN):
                _write_atomic(Path(s.role_file), f"{decision.role}\n", durable=True)
            status = {
                "role": str(decision.role),
                "open": sorted(decision.open),
                "lease_until": deadline if decision.open else 0,
                "reason": decision.reason,
                "round_started_at": started_wall,
                "decided_at": time.time(),
                "servers": {v.server: v.error or "answered" for v in views},
            }
            _write_atomic(Path(s.status_file), json.dumps(status) + "\n", durable=False)
        self.confirmed_at, self.named_at = decision.confirmed_at, decision.named_at
        self._log_servers({v.server: v.error for v in views if v.error})
        self._log(decision)
        self.last = decision
        return decision

    def _log(self, decision: Decision) -> None:
        """One line when the role, the open ports or the kind of reason change."""
        headline = f"{decision.role} {sorted(decision.open)} {decision.reason.split(' (')[0]}"
        if headline != self._said:
            level = logging.WARNING if decision.role is Role.DEMOTED else logging.INFO
            log.log(level, "%s", decision.reason)
            self._said = headline

    def _log_servers(self, failing: dict[str, str]) -> None:
        """A server that stops or starts answering is worth a line even when another one
        answers (the decision, and its log line, may not change)."""
        for server in sorted(set(failing) - set(self._failing)):
            log.warning("authoritative server %s does not answer: %s", server, failing[server])
        for server in sorted(set(self._failing) - set(failing)):
            log.info("authoritative server %s answers again", server)
        self._failing = failing

    def run(self) -> None:
        """Forever; a round that fails is logged and the next one runs on time."""
        while True:
            started = time.monotonic()
            try:
                self.round()
            except Exception:
                log.exception("round failed; the current lease runs out on its own")
            time.sleep(max(0.0, started + self.settings.interval - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxctl-guard", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        for problem in exc.problems:
            log.error("invalid settings: %s", problem)
        return 2
    guard = Guard(settings)
    if args.once:
        print(guard.round().reason)
        return 0
    log.info(
        "watching %s for %s (%s); lease %g s, every %g s",
        ", ".join(settings.nameservers),
        settings.fqdn,
        ", ".join(settings.addresses),
        settings.lease,
        settings.interval,
    )
    guard.run()
    return 0
