"""Mail clients hammering one host: as many TCP connects to its client ports as this
process can make, plus full SMTP attempts to hand it a message. Every success is recorded.

Used by the guard's lab test and bench (lab/mxlab/guardfaults.py) from two vantage
points: in the calling process (the machine) and inside `sender`'s network namespace
(`python -m mxlab.clientpoll ...`, which prints its result as JSON once
`--stop-file` appears).
"""

from __future__ import annotations

import argparse
import json
import smtplib
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path

CLIENT_PORTS = (25, 587, 143, 993)


@dataclass
class PollResult:
    vantage: str
    started_at: float = 0.0
    stopped_at: float = 0.0
    attempts: int = 0
    refused: int = 0
    other_errors: int = 0
    accepted: list[tuple[float, int]] = field(default_factory=list)  # (wall time, port)
    smtp_attempts: int = 0
    smtp_delivered: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _connect(address: str, port: int, result: PollResult, lock: threading.Lock) -> None:
    try:
        with socket.create_connection((address, port), timeout=0.3):
            outcome = "accepted"
    except ConnectionRefusedError:
        outcome = "refused"
    except OSError:
        outcome = "error"
    with lock:
        result.attempts += 1
        if outcome == "accepted":
            result.accepted.append((time.time(), port))
        elif outcome == "refused":
            result.refused += 1
        else:
            result.other_errors += 1


def _hand_message(address: str, result: PollResult, lock: threading.Lock) -> None:
    msg = EmailMessage()
    msg["From"] = "poller@sender.example.test"
    msg["To"] = "alice@example.test"
    msg["Subject"] = f"guard-poll {time.time():.3f}"
    msg.set_content("must never be accepted by a host DNS no longer names\n")
    delivered = False
    try:
        with smtplib.SMTP(address, 25, local_hostname="poller.example.test", timeout=1) as smtp:
            smtp.send_message(msg)
            delivered = True
    except (OSError, smtplib.SMTPException):
        pass
    with lock:
        result.smtp_attempts += 1
        if delivered:
            result.smtp_delivered.append(time.time())


def poll(
    vantage: str, address: str, until: threading.Event | Path | float, smtp: bool = True
) -> PollResult:
    """Poll until `until` is set (an Event), exists (a Path), or the seconds passed."""
    result = PollResult(vantage, started_at=time.time())
    lock = threading.Lock()
    deadline = time.monotonic() + until if isinstance(until, float | int) else None

    def done() -> bool:
        if isinstance(until, threading.Event):
            return until.is_set()
        if isinstance(until, Path):
            return until.exists()
        return deadline is not None and time.monotonic() >= deadline

    def connects(port: int) -> None:
        while not done():
            _connect(address, port, result, lock)

    def handoffs() -> None:
        while not done():
            _hand_message(address, result, lock)

    threads = [threading.Thread(target=connects, args=(p,)) for p in CLIENT_PORTS]
    if smtp:
        threads.append(threading.Thread(target=handoffs))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.stopped_at = time.time()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(poll(args.vantage, args.address, args.stop_file).to_json()))


if __name__ == "__main__":
    main()
