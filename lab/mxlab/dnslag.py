"""A secondary nameserver that serves changes late: `mxctl lab fault ns2 lag SECONDS`.

While lagged, ns2 learns nothing from ns1 by itself: a table in ns2's namespace drops
ns1's NOTIFY and ns2's own SOA queries and transfers to ns1 (its refresh timer, 60 s in
the lab zones, would otherwise end the lag at random inside a test). Queries to ns2 and
ns2's answers are untouched. A detached process on the machine polls both servers' SOA
serial of every lab zone and, SECONDS after ns1 first served a serial ns2 lacks, opens the
way for one `rndc retransfer` of that zone: ns2 then serves ns1's data as it is by then.

The process's pid is kept in the lab's state directory; `unlag` (`lag 0`), the harness's
restore and `mxctl lab down` end it, and it ends by itself when that file is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from mxlab import network
from mxlab.procs import alive, wait_gone
from mxlab.state import state_dir
from mxlab.topology import ZONES, HostSpec, host_spec
from orchestrator.errors import LabError, UsageError

LAG_TABLE = "mxlab_lag"
POLL = 0.2  # s between two looks at the serials
TRANSFER_WAIT = 10.0  # s a retransfer may take before the zone is tried again


def pid_file() -> Path:
    return state_dir() / "ns2-lag.pid"


def _recorded() -> tuple[int, float] | None:
    """The lag process's pid and its lag, as recorded; None when there is none."""
    try:
        pid_text, seconds = pid_file().read_text().split()
        return int(pid_text), float(seconds)
    except (FileNotFoundError, ValueError):
        return None


def lag_seconds() -> float | None:
    """The lag in force, or None."""
    recorded = _recorded()
    return recorded[1] if recorded is not None and alive(recorded[0]) else None


def parse_seconds(word: str) -> float:
    try:
        seconds = float(word.removesuffix("s"))
    except ValueError:
        raise UsageError(
            f"lag takes a number of seconds, got {word!r}: e.g. mxctl lab fault ns2 lag 8"
        ) from None
    if not 0 <= seconds <= 3600:
        raise UsageError(f"lag must be between 0 and 3600 s, got {word!r}")
    return seconds


def start(seconds: float) -> None:
    """Make ns2 serve every change `seconds` late (replacing any lag in force)."""
    stop()
    ns1, ns2 = host_spec("ns1"), host_spec("ns2")
    hold(ns2, ns1)
    log = (state_dir() / "ns2-lag.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mxlab.dnslag", str(seconds)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env={**os.environ, "MXCTL_LAB_DIR": str(state_dir())},
    )  # fmt: skip
    pid_file().write_text(f"{proc.pid} {seconds:g}\n")


def stop() -> None:
    """End the lag: the process killed, ns2 free to transfer, and told to catch up now."""
    end_process()
    ns2 = host_spec("ns2")
    if (network.NETNS_DIR / ns2.netns).exists() and release(ns2):
        from mxlab import control  # control imports this module

        for zone in ZONES:
            control.exec_in("ns2", ["rndc", "refresh", zone], capture=True)


def end_process() -> None:
    """Kill the lag's process, if any (`mxctl lab down` too: nothing may outlive the lab)."""
    recorded = _recorded()
    pid_file().unlink(missing_ok=True)
    pid = recorded[0] if recorded is not None else None
    if pid is not None and alive(pid):
        os.kill(pid, signal.SIGTERM)
        if wait_gone([pid], 5.0):
            os.kill(pid, signal.SIGKILL)


def hold(ns2: HostSpec, ns1: HostSpec) -> None:
    """Drop what keeps ns2 current by itself; `@held` holds ns1's address while lagging."""
    rules = f"""
table inet {LAG_TABLE} {{
    set held {{ type ipv4_addr; elements = {{ {ns1.address} }}; }}
    chain input {{ type filter hook input priority -5; ip saddr {ns1.address} udp dport 53 drop; }}
    chain output {{ type filter hook output priority -5; ip daddr @held th dport 53 drop; }}
}}
"""
    network.nft(ns2, rules, what="holding ns2's transfers back")


def release(ns2: HostSpec) -> bool:
    """Remove the lag's table; whether there was one."""
    listed = subprocess.run(
        network.nft_argv(ns2, "list", "table", "inet", LAG_TABLE), capture_output=True, check=False
    )
    if listed.returncode != 0:
        return False
    network.nft(ns2, f"delete table inet {LAG_TABLE}\n", what="releasing ns2's transfers")
    return True


def _serial(address: str, zone: str) -> int | None:
    try:
        reply = dns.query.udp(dns.message.make_query(zone, "SOA"), address, timeout=1)
        return int(reply.answer[0][0].serial)
    except (OSError, dns.exception.DNSException, IndexError):
        return None


def _retransfer(ns2: HostSpec, ns1: HostSpec, zone: str, serial: int) -> None:
    from mxlab import control

    held = f"element inet {LAG_TABLE} held {{ {ns1.address} }}\n"
    network.nft(ns2, "delete " + held, what="opening ns2's transfers")
    try:
        control.exec_in("ns2", ["rndc", "retransfer", zone], capture=True)
        deadline = time.monotonic() + TRANSFER_WAIT
        while _serial(ns2.address, zone) != serial and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        network.nft(ns2, "add " + held, what="holding ns2's transfers back")


def run_lag(seconds: float) -> None:
    """The detached process: transfer each zone `seconds` after ns1 first served a serial
    that ns2 does not have."""
    ns1, ns2 = host_spec("ns1"), host_spec("ns2")
    behind_since: dict[str, float] = {}
    started = time.monotonic()
    while _recorded() is None and time.monotonic() - started < 5:
        time.sleep(0.05)  # the starter writes the file once this process exists
    while (_recorded() or (0, 0.0))[0] == os.getpid():
        now = time.monotonic()
        for zone in ZONES:
            primary, secondary = _serial(ns1.address, zone), _serial(ns2.address, zone)
            if primary is None or primary == secondary:
                behind_since.pop(zone, None)
                continue
            since = behind_since.setdefault(zone, now)
            if now - since >= seconds:
                print(f"{zone}: serial {primary} to ns2 after {now - since:.1f} s", flush=True)
                _retransfer(ns2, ns1, zone, primary)
                behind_since.pop(zone, None)
        time.sleep(POLL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seconds", type=float)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_lag(args.seconds)
    except LabError as exc:
        print(f"lag stopped: {exc}", flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
