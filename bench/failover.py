"""Failover figures on the lab, as the world sees them: N failovers per fault under steady mail.

Run as root with the lab up (`mxctl lab up`):
`.venv/bin/python bench/failover.py [-n 10] [--faults kill,down,freeze,link-down]`.
Each round starts from the steady state (mx1 primary, mx2 its backup MX, the outside
world's resolver cache knowing that), with the controller (`mxctl watch`) on the machine
and a witness in sender's namespace. A client hands messages to `sender`'s MTA at --rate
per second; sender resolves the MX through the lab's caching resolver and keeps
Postfix's default retry schedule: NO queue is ever flushed to make a figure. mx1 then
fails in one of four ways (`mxctl lab fault mx1 ...`): `kill` (every process SIGKILLed,
the kernel answers RST), `down` (silent death: killed, and every packet dropped),
`freeze` (hung: TCP accepted, nobody answers) and `link-down` (its link cut). Per round
("crash" is the fault's moment):

- detection: crash -> the controller's journal says primary-dead (the failover starts);
- authoritative RTO: crash -> every authoritative server serves the new MX (a component);
- inbound RTO: crash -> the first message handed to sender after the crash is readable on
  the new primary; and the delay (acceptance by sender -> INTERNALDATE on mx2, 1 s
  resolution) of every message accepted during the outage;
- client RTO: crash -> a mail user on `client`, resolving `mail.example.test` through the
  same cache, logs in over IMAPS and sees a message sent after the crash;
- RPO, after the fact: mx1 is booted again (it stays fenced; the controller drains its
  queue into its mailboxes and replication carries them over), and every message sender
  accepted is looked for on mx2. Deferred mail on sender may be retried on its own
  schedule; for this count only, sender's queue is flushed once the figures above are
  taken, and this says so.

`--leader-kill` (issue 15) runs on the controller cluster instead (ctl1..ctl3, each an etcd
member and `mxctl watch`, added with `mxctl lab controllers up` and deployed here): N
rounds of the plain crash, then N rounds where the leading controller is SIGKILLed at the
same moment as mx1, and prints the authoritative RTO of both side by side (the target
with a leader change: lease TTL + detection window + 1 s). Mail traffic and RPO are the
plain mode's business and are not repeated there.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The repo root, not bench/ (whose dns.py would shadow dnspython), goes first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import control
from mxlab.clustered import NAMES, ClusterLab, install
from mxlab.controlled import ControlledLab, mx_at, write_config
from mxlab.controllerinv import LEASE_TTL
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailtraffic import SteadySender, arrivals_on, lost_after_rpo_flush, message
from mxlab.state import load_lab_state, state_dir
from mxlab.worldview import ClientWatch

from orchestrator.config import load_config
from orchestrator.controller.downtime import DNS_ALLOWANCE_S
from orchestrator.deploy import runner

MX2 = ["10 mx2.example.test."]


# A user not reading new mail this long after the crash counts as "never" (target: 65 s).
CLIENT_WAIT_S = 150
# How each fault is undone before the RPO count.
UNDO = {"kill": "up", "down": "up", "freeze": "thaw", "link-down": "link-up"}


@dataclass
class Round:
    fault: str
    detection: float | None
    authoritative: float
    inbound: float | None
    client: float | None
    delays: list[float]
    accepted: int
    missing: int


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def first_readable(h: ControlledLab, sender: SteadySender, after: float, limit: float) -> float:
    """Seconds from `after` until the first message sender took after it is on mx2."""
    while time.time() - after < limit:
        arrived = arrivals_on(h.lab, "mx2", sender.prefix)
        taken = sorted((t, s) for s, t in list(sender.accepted_at.items()) if t >= after)
        if taken and taken[0][1] in arrived:
            return time.time() - after
        time.sleep(0.2)
    return float("nan")


def detected_after(h: ControlledLab, crashed_at: float) -> float | None:
    """Seconds from the crash to the controller's first primary-dead decision after it."""
    for event in h.journal_events():
        at = datetime.fromisoformat(event.at).timestamp()
        if event.kind == "decision" and event.subject == "primary-dead" and at >= crashed_at:
            return at - crashed_at
    return None


def one_round(h: ControlledLab, index: int, rate: float, fault: str) -> Round:
    h.start_witness()
    h.start_controller()
    h.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    prefix = f"bench-{int(time.time())}-{index}"
    sender = SteadySender(h.lab, prefix, rate)
    sender.start()
    time.sleep(2)
    crashed, crashed_at = time.monotonic(), time.time()
    control.fault("mx1", fault)
    inbound_box: list[float] = []
    looker = threading.Thread(
        target=lambda: inbound_box.append(first_readable(h, sender, crashed_at, 120)), daemon=True
    )
    looker.start()  # from the crash on, alongside everything else
    client_subject = f"{prefix}-client"
    watch = ClientWatch(h.lab, client_subject, timeout=CLIENT_WAIT_S, interval=0.25)
    with smtplib.SMTP(h.lab.host("sender").address, 25, local_hostname="bench.example.test") as s:
        s.send_message(message(client_subject))
    authoritative = None
    while time.monotonic() - crashed < 60:
        if all(mx_at(ns) == MX2 for ns in h.nameservers()):
            authoritative = time.monotonic() - crashed
            break
        time.sleep(0.02)
    if authoritative is None:
        raise SystemExit(f"round {index}: MX never moved to mx2; see {h.directory}")
    looker.join()
    inbound = inbound_box[0] if inbound_box else float("nan")
    sighting = watch.result()
    sender.stop.set()
    sender.join()
    arrived = arrivals_on(h.lab, "mx2", prefix)
    outage_end = crashed_at + authoritative
    during = [s for s, t in sender.accepted_at.items() if crashed_at <= t <= outage_end]
    delays = [max(0.0, arrived[s] - sender.accepted_at[s]) for s in during if s in arrived]
    detection = detected_after(h, crashed_at)
    # RPO, after the fact: mx1 back (fenced; the controller drains it), then sender's
    # queue flushed for this count only.
    control.fault("mx1", UNDO[fault])
    accepted = set(sender.accepted)
    missing = lost_after_rpo_flush(h.lab, ("mx2",), prefix, accepted, 90)
    return Round(
        fault,
        detection,
        authoritative,
        inbound,
        sighting.at - crashed_at if sighting.ok else None,
        delays,
        len(accepted),
        len(missing),
    )


def cluster_round(ctl: ClusterLab, mail: ControlledLab, index: int, kill_leader: bool) -> float:
    """Crash mx1 (and SIGKILL the leading controller at the same moment): seconds until
    every authoritative server serves mx2 as the MX."""
    mail.start_witness()
    ctl.start()
    leader, _ = ctl.wait_leader(40)
    deadline = time.monotonic() + 40
    while "healthy" not in ctl.status(leader).get("last_cycle", ""):
        if time.monotonic() > deadline:
            raise SystemExit(f"round {index}: no healthy cycle on {leader}")
        time.sleep(0.1)
    crashed = time.monotonic()
    control.fault("mx1", "down")
    if kill_leader:
        ctl.kill(leader)
    while time.monotonic() - crashed < 60:
        if all(mx_at(ns) == MX2 for ns in mail.nameservers()):
            return time.monotonic() - crashed
        time.sleep(0.02)
    raise SystemExit(
        f"round {index}: MX never moved to mx2 (leader {leader} killed: {kill_leader})"
    )


def leader_kill_mode(rounds: int, window: float) -> int:
    lab = install()
    ctl = ClusterLab(lab)
    figures: dict[bool, list[float]] = {False: [], True: []}
    print(f"bench/failover.py --leader-kill: {rounds} rounds each on {', '.join(NAMES)}, "
          f"lease TTL {LEASE_TTL} s, detection window {window:g} s")  # fmt: skip
    for kill_leader in (False, True):
        for i in range(rounds):
            with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
                mail = ControlledLab(lab, Path(tmp), write_config(lab, Path(tmp)))
                try:
                    ctl.reset()
                    mail.restore()
                    took = cluster_round(ctl, mail, i, kill_leader)
                finally:
                    ctl.reset()
                    mail.restore()
            figures[kill_leader].append(took)
            what = "crash + leader SIGKILL" if kill_leader else "plain crash"
            print(f"  {what} round {i + 1}: authoritative {took:.2f} s", flush=True)
    for kill_leader, label in ((False, "plain crash"), (True, "crash + leader SIGKILL")):
        values = figures[kill_leader]
        print(f"authoritative RTO, {label}: p50 {statistics.median(values):.2f} s, "
              f"p95 {p95(values):.2f} s, max {max(values):.2f} s")  # fmt: skip
    target = LEASE_TTL + window + 1
    print(f"target with a leader change: p95 <= lease TTL + detection window + 1 s = {target:g} s")
    return 0 if p95(figures[True]) <= target else 1


def figure(values: list[float], unit: str = "s", digits: int = 2) -> str:
    if not values:
        return "none"
    return (f"p50 {statistics.median(values):.{digits}f} {unit}, p95 {p95(values):.{digits}f} "
            f"{unit}, max {max(values):.{digits}f} {unit}")  # fmt: skip


def report(fault: str, rounds: list[Round], window: float, client_ttl: int) -> None:
    detect = [r.detection for r in rounds if r.detection is not None]
    auth = [r.authoritative for r in rounds]
    inbound = [r.inbound for r in rounds if r.inbound is not None and r.inbound == r.inbound]
    client = [r.client for r in rounds if r.client is not None]
    delays = sorted(d for r in rounds for d in r.delays)
    lost, sent = sum(r.missing for r in rounds), sum(r.accepted for r in rounds)
    print(f"== {fault} ({len(rounds)} rounds)")
    print(f"detection (crash -> primary-dead in the journal): {figure(detect)} "
          f"in {len(detect)} of {len(rounds)} rounds (target <= {window + 1:g} s)")  # fmt: skip
    print(f"failover, authoritative RTO (crash -> new MX at every authoritative server): "
          f"{figure(auth)}")  # fmt: skip
    if inbound:
        print(f"inbound RTO (crash -> first message handed to sender after it readable on "
              f"mx2): {figure(inbound)}")  # fmt: skip
    if delays:
        print(f"delay of the {len(delays)} messages accepted during the outage (1 s "
              f"resolution): {figure(delays, digits=1)}")  # fmt: skip
    print(f"client RTO (crash -> a user behind the cache reads new mail): "
          f"{figure(client, digits=1)} in {len(client)} of {len(rounds)} rounds (target p95 <= "
          f"{window + client_ttl + DNS_ALLOWANCE_S:g} s)")  # fmt: skip
    print(f"RPO: {lost} of {sent} accepted messages not readable on the new primary after "
          "the old one was recovered and resynced (target 0)")  # fmt: skip


def sender_connect_timeout() -> str:
    found = control.exec_in("sender", ["postconf", "-h", "smtp_connect_timeout"], capture=True)
    return found.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument(
        "--faults",
        default=",".join(UNDO),
        help=f"comma-separated faults of mx1, each -n rounds (of {', '.join(UNDO)})",
    )
    parser.add_argument(
        "--leader-kill",
        action="store_true",
        help="on the controller cluster: plain crashes, then crashes with the leader killed",
    )
    args = parser.parse_args()
    lab = load_lab_state()
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.failed()}")
    config = load_config(state_dir() / "mxctl.toml")
    window = config.policy.interval * config.policy.failure_threshold
    if args.leader_kill:
        return leader_kill_mode(args.rounds, window)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in UNDO]
    if unknown:
        raise SystemExit(f"--faults: unknown {', '.join(unknown)}; choose from {', '.join(UNDO)}")
    client_ttl = max(r.ttl for r in config.dns.records if r.rtype in ("A", "AAAA"))
    rounds: list[Round] = []
    print(f"bench/failover.py: {args.rounds} rounds of each of {', '.join(faults)}, "
          f"{args.rate:g} messages/s, detection window {window:g} s, client-name TTL "
          f"{client_ttl} s; sender's smtp_connect_timeout {sender_connect_timeout()}, the "
          "mail client's IMAP connect timeout 3 s")  # fmt: skip
    for fault in faults:
        for i in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
                h = ControlledLab(lab, Path(tmp), write_config(lab, Path(tmp)))
                try:
                    h.restore()
                    r = one_round(h, i, args.rate, fault)
                finally:
                    h.restore()
            rounds.append(r)
            client = f"{r.client:.1f} s" if r.client is not None else "never"
            detect = f"{r.detection:.2f} s" if r.detection is not None else "not journaled"
            worst = f"{max(r.delays):.1f} s" if r.delays else "-"
            print(f"  {fault} round {i + 1}: detection {detect}, authoritative "
                  f"{r.authoritative:.2f} s, inbound {r.inbound:.2f} s, client {client}, "
                  f"max delay {worst}, {r.accepted} accepted, {r.missing} not readable",
                  flush=True)  # fmt: skip
    for fault in faults:
        report(fault, [r for r in rounds if r.fault == fault], window, client_ttl)
    lost = sum(r.missing for r in rounds)
    return 0 if lost == 0 and all(r.client is not None for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
