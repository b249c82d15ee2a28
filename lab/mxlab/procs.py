"""Running host commands for the lab, with failures translated into one-line LabErrors."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.errors import LabError

log = logging.getLogger(__name__)


def run(
    argv: Sequence[str],
    *,
    what: str,
    fix: str = "",
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise LabError naming `what` failed, its stderr tail and `fix`."""
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise LabError(f"{what}: command {argv[0]!r} not found. {fix}".strip()) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: timed out after {timeout:.0f} s. {fix}".strip()) from None
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        detail = " | ".join(tail) or f"exit {proc.returncode}"
        raise LabError(f"{what} failed: {detail}. {fix}".strip())
    return proc


def process_state(pid: int) -> str | None:
    """The `State:` letter of a process, or None when it is gone.

    A zombie counts as gone: PID 1 on these machines reaps orphans only every few seconds,
    so `kill -0` would keep seeing processes that have already exited.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                state = line.split()[1]
                return None if state in ("Z", "X") else state
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None


def alive(pid: int) -> bool:
    return process_state(pid) is not None


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float, clock: Clock = SYSTEM_CLOCK) -> list[int]:
    """Wait until every pid is gone; return those still alive at the deadline."""
    deadline = clock.monotonic() + timeout
    remaining = [p for p in pids if alive(p)]
    while remaining and clock.monotonic() < deadline:
        clock.sleep(0.05)
        remaining = [p for p in remaining if alive(p)]
    return remaining
