"""Bench: deploy times (first, no-op redeploy, ratio) and replication lag on the lab.

First deploy: the time of the mail pair's deploy onto bare hosts. Only a fresh lab has bare
hosts, so when mx1/mx2 already carry Postfix this prints the figure recorded by the first
deploy of this lab (<lab state>/deploy-first.json, written by the deploy test fixture and by
this bench) and says so; when they are bare, it deploys and measures.

No-op redeploy: the same deploy again, every operation "no change" (asserted), median of 3.

Replication lag: N messages (default 50) sent over SMTP to mx1 for the probe user; two IMAP
sessions (one per host, TLS verified against the lab CA) poll for each message; lag is the
time between it becoming readable on mx1 and on mx2. Delivery latency (SMTP accepted ->
readable on mx1) is printed too.

Run: .venv/bin/python bench/deploy.py [--messages N]   (targets: no-op <= 15 %, p95 < 2 s)
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import threading
import time
from pathlib import Path

# bench/ holds a dns.py: keep it off the path (it would shadow dnspython); the repository
# root goes first instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from mxlab import acmehost
from mxlab import inventory as labinv
from mxlab.deploying import LAB_INVENTORY
from mxlab.mailclient import Imaps, make_message, tls_context
from mxlab.state import LabState, load_lab_state

from orchestrator.deploy import runner
from orchestrator.remote import run_remote

INVENTORY = LAB_INVENTORY
CLIENT_NAME = "mail.example.test"
NOOP_TARGET = 0.15
LAG_TARGET = 2.0


def hosts_are_bare(lab: LabState) -> bool:
    """Neither mail host has Postfix yet (a deploy from bare can be timed)."""
    probe = "dpkg-query -W postfix"
    return all(run_remote(lab.ssh_target(n), probe, 30).exit_code != 0 for n in ("mx1", "mx2"))


def deploy(label: str) -> runner.RunResult:
    result = runner.run_deploy(INVENTORY, runner.MAIL_DEPLOY)
    if not result.ok:
        sys.exit(f"{label} deploy failed: {result.failed()}\n{result.stderr[-3000:]}")
    return result


def first_deploy_seconds(lab: LabState) -> tuple[float, str]:
    if hosts_are_bare(lab):
        result = deploy("first")
        if not result.looks_like_bare_install(("mx1", "mx2")):
            sys.exit("the hosts looked bare but the deploy changed little: not a first deploy")
        changed = sum(len(op.changed) for op in result.operations)
        labinv.record_first_deploy(result.seconds, len(result.operations), changed)
        return result.seconds, "measured now, onto bare hosts"
    record = labinv.recorded_first_deploy()
    if record is None:
        sys.exit(
            "mx1/mx2 are not bare and this lab recorded no first deploy: "
            "the first-deploy time needs a fresh lab (mxctl lab down && mxctl lab up)"
        )
    return float(record["seconds"]), (
        f"recorded by this lab's first deploy onto bare hosts at {record['recorded_at']} "
        f"({record['changed']} changes); a bare host again needs a fresh lab"
    )


def noop_seconds() -> float:
    deploy("settling")  # whatever an earlier run left to do
    times = []
    for _ in range(3):
        result = deploy("no-op")
        changed = result.changed()
        if changed:
            sys.exit(f"a no-op redeploy changed {changed}")
        times.append(result.seconds)
    return statistics.median(times)


class Watcher(threading.Thread):
    """Polls one host's INBOX (probe user) for a subject; records when it appears."""

    def __init__(self, lab: LabState, host: str, user: str, password: str) -> None:
        super().__init__(daemon=True)
        context = tls_context(acmehost.trust_file(lab))
        self.client = Imaps(lab.host(host).address, CLIENT_NAME, context)
        self.client.login(user, password)
        self.client.select("INBOX")
        self.subject: str | None = None
        self.seen = threading.Event()
        self.seen_at = 0.0
        self.stop = False

    def watch(self, subject: str) -> None:
        self.seen.clear()
        self.subject = subject

    def run(self) -> None:
        while not self.stop:
            subject = self.subject
            if subject is None or self.seen.is_set():
                time.sleep(0.005)
                continue
            self.client.noop()
            _, data = self.client.search(None, "HEADER", "Subject", f'"{subject}"')
            if data and data[0]:
                self.seen_at = time.monotonic()
                self.seen.set()
            else:
                time.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def replication_lags(lab: LabState, messages: int, user: str) -> tuple[list[float], list[float]]:
    pair = runner.preflight(INVENTORY)
    password = next(u.password.reveal() for u in pair.users if u.address == user)
    primary, standby = Watcher(lab, "mx1", user, password), Watcher(lab, "mx2", user, password)
    primary.start()
    standby.start()
    lags: list[float] = []
    deliveries: list[float] = []
    try:
        with smtplib.SMTP(lab.host("mx1").address, 25, local_hostname="bench.example.test") as s:
            for i in range(messages):
                msg = make_message("bench@sender.example.test", user)
                subject = f"mxctl bench {i} {msg['Message-ID']}"
                msg.replace_header("Subject", subject)
                primary.watch(subject)
                standby.watch(subject)
                s.send_message(msg)
                accepted = time.monotonic()
                if not (primary.seen.wait(30) and standby.seen.wait(30)):
                    sys.exit(f"message {i} did not reach both hosts within 30 s")
                deliveries.append(primary.seen_at - accepted)
                lags.append(standby.seen_at - primary.seen_at)
    finally:
        primary.stop = standby.stop = True
        primary.join(2)
        standby.join(2)
        for w in (primary, standby):
            w.client.logout()
    return lags, deliveries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument(
        "--user",
        default=labinv.PROBE_USER,
        help="mailbox to measure with (default: the probe user; the lab's other users are "
        "alice, used by the failover tests, and bob)",
    )
    parser.add_argument("--skip-deploy", action="store_true", help="replication lag only")
    args = parser.parse_args()
    lab = load_lab_state()

    if not args.skip_deploy:
        first, how = first_deploy_seconds(lab)
        noop = noop_seconds()
        ratio = noop / first
        print(f"first deploy (mail pair, 2 hosts): {first:.1f} s  [{how}]")
        print(f"no-op redeploy (median of 3, 0 changes): {noop:.1f} s")
        verdict = "met" if ratio <= NOOP_TARGET else "MISSED"
        print(f"no-op / first: {ratio:.1%}  (target <= {NOOP_TARGET:.0%}: {verdict})")

    lags, deliveries = replication_lags(lab, args.messages, args.user)
    p50, p95 = percentile(lags, 0.50), percentile(lags, 0.95)
    verdict = "met" if p95 < LAG_TARGET else "MISSED"
    print(
        f"replication lag mx1 -> mx2 ({args.user}, {len(lags)} messages): p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms  "
        f"(target p95 < {LAG_TARGET:.0f} s: {verdict})"
    )
    print(
        f"delivery SMTP accepted -> readable on mx1: p50 {percentile(deliveries, 0.5) * 1000:.0f}"
        f" ms, p95 {percentile(deliveries, 0.95) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
