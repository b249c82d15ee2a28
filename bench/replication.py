"""Replication figures on the lab pair (either release): new-mail lag, and a sweep of N users.

    .venv/bin/python bench/replication.py lag [--messages 40]
    .venv/bin/python bench/replication.py sweep [--users 1000]     # Dovecot 2.4 (mxctl-dsync)

lag: messages handed to mx1's Postfix one at a time; each is timed from SMTP acceptance
until an IMAP client on mx2 (read-only EXAMINE, polled every 20 ms) sees it. p50/p95/max.

sweep: N bench users are added to both hosts' userdb, each with an INBOX holding two
messages created on mx1 only; then three timed sweeps (`mxctl-dsync sync --all`, waited
until every bench user has synced): the first copies every mailbox to mx2, the second finds
nothing to do, the third carries one new message per mailbox. Bench users and their mail
are removed at the end (the next deploy would restore the users file anyway).
"""

from __future__ import annotations

import argparse
import json
import smtplib
import statistics
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import acmehost
from mxlab.mailtraffic import CLIENT_NAME, Imaps, message
from mxlab.state import LabState, load_lab_state, state_dir

from orchestrator.deploy.hostfiles import DOVECOT_USERS, DSYNC_COMMAND, VMAIL_HOME
from orchestrator.remote import run_remote

LAG_USER = "bob@example.org"
BENCH_DOMAIN = "example.test"


def ssh(lab: LabState, host: str, command: str, timeout: float = 600) -> str:
    result = run_remote(lab.ssh_target(host), command, timeout)
    if result.exit_code != 0:
        raise SystemExit(f"{host}: {command[:120]}: exit {result.exit_code}: {result.stderr}")
    return result.stdout


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def lag(lab: LabState, count: int) -> None:
    import ssl

    secret = state_dir() / "secrets" / f"mail-user-{LAG_USER.replace('@', '-at-')}"
    context = ssl.create_default_context(cafile=acmehost.trust_file(lab))
    imap = Imaps(lab.host("mx2").address, CLIENT_NAME, context, timeout=10)
    imap.login(LAG_USER, secret.read_text().strip())
    smtp = smtplib.SMTP(lab.host("mx1").address, 25, local_hostname="bench.example.net")
    lags: list[float] = []
    prefix = f"lag-{int(time.time())}"
    for n in range(count):
        subject = f"{prefix}-{n:03d}"
        smtp.send_message(message(subject, LAG_USER))
        accepted = time.monotonic()
        while True:
            imap.select("INBOX", readonly=True)  # a fresh view of the mailbox each time
            _, data = imap.search(None, "SUBJECT", f'"{subject}"')
            if data and data[0]:
                lags.append(time.monotonic() - accepted)
                break
            if time.monotonic() - accepted > 30:
                lags.append(float("inf"))
                break
            time.sleep(0.02)
        time.sleep(0.2)  # one message at a time, as new mail usually comes
    smtp.quit()
    imap.logout()
    finite = [x for x in lags if x != float("inf")]
    lost = len(lags) - len(finite)
    print(
        f"new-mail replication lag mx1 -> mx2 ({len(lags)} messages, SMTP accept to IMAP on mx2):"
    )
    print(
        f"  p50 {percentile(finite, 50) * 1000:.0f} ms  p95 {percentile(finite, 95) * 1000:.0f} ms"
        f"  max {max(finite) * 1000:.0f} ms  mean {statistics.mean(finite) * 1000:.0f} ms"
        f"  not seen within 30 s: {lost}"
    )


def _user(i: int) -> str:
    return f"bench{i:04d}@{BENCH_DOMAIN}"


def _synced_after(lab: LabState, host: str, users: set[str], started_age: float) -> int:
    """How many of `users` had a successful sync less than `started_age` seconds ago."""
    table = ssh(lab, host, f"{DSYNC_COMMAND} status '*'")
    done = 0
    for line in table.splitlines()[1:]:
        cols = line.split("\t")
        if cols[0] in users and cols[4] != "-":
            h, m, s = (int(x) for x in cols[4].split(":"))
            done += h * 3600 + m * 60 + s <= started_age
    return done


def timed_sweep(lab: LabState, users: set[str], what: str) -> float:
    time.sleep(1.1)  # ages are whole seconds: let every earlier sync age past 1 s
    started = time.monotonic()
    ssh(lab, "mx1", f"{DSYNC_COMMAND} sync --all >/dev/null")
    while True:
        age = time.monotonic() - started
        done = _synced_after(lab, "mx1", users, age + 0.999)
        if done >= len(users):
            break
        if age > 1800:
            raise SystemExit(f"{what}: only {done} of {len(users)} synced after 30 min")
        time.sleep(0.5)
    took = time.monotonic() - started
    print(
        f"  {what}: {took:.1f} s for {len(users)} mailboxes"
        f" ({took / len(users) * 1000:.0f} ms each)",
        flush=True,
    )
    return took


def sweep(lab: LabState, count: int) -> None:
    users = [_user(i) for i in range(count)]
    # Shell loops: 1000 users' lines would overflow one command's argument size.
    each = f"for i in $(seq 0 {count - 1}); do u=$(printf 'bench%04d@{BENCH_DOMAIN}' $i); "
    settings = json.loads(ssh(lab, "mx1", "cat /etc/mxctl/dsync.json"))
    print(
        f"sweep of {count} mailboxes by mxctl-dsync on mx1 "
        f"({settings['workers']} workers, 2 cores shared by both hosts):",
        flush=True,
    )
    for host in ("mx1", "mx2"):
        ssh(
            lab,
            host,
            f"cp {DOVECOT_USERS} /root/users.before-bench && "
            f'{each} echo "$u:{{SHA512-CRYPT}}\\$6\\$x\\$unusable::::::"; done >> {DOVECOT_USERS}',
        )
    try:
        started = time.monotonic()
        save = "printf 'Subject: %s\\n\\nx\\n' {subject} | doveadm save -u $u"
        ssh(
            lab,
            "mx1",
            f"{each} {save.format(subject='b$i')}; {save.format(subject='c$i')}; done",
            timeout=1800,
        )
        print(
            f"  (setup: {count} mailboxes with 2 messages each on mx1 in "
            f"{time.monotonic() - started:.0f} s)",
            flush=True,
        )
        bench = set(users)
        timed_sweep(lab, bench, "first sweep, every mailbox new to mx2")
        timed_sweep(lab, bench, "sweep with nothing to do")
        ssh(lab, "mx1", f"{each} {save.format(subject='d$i')}; done", timeout=1800)
        timed_sweep(lab, bench, "sweep with one new message per mailbox")
        missing = ssh(
            lab,
            "mx2",
            "doveadm -f tab mailbox status -A messages INBOX | "
            "awk -F'\\t' '$1 ~ /^bench/ && $3 != 3' | wc -l",  # user, mailbox, messages
        )
        print(f"  mailboxes on mx2 without all 3 messages: {missing.strip()}")
    finally:
        for host in ("mx1", "mx2"):
            ssh(
                lab,
                host,
                f"cp /root/users.before-bench {DOVECOT_USERS}; "
                f"rm -rf {VMAIL_HOME}/{BENCH_DOMAIN}/bench*",
            )
        ssh(lab, "mx1", f"{DSYNC_COMMAND} sync --all >/dev/null")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what")  # no subcommand (make bench): lag
    sub.add_parser("lag").add_argument("--messages", type=int, default=40)
    sub.add_parser("sweep").add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    lab = load_lab_state()
    suite = lab.extra.get("mail_suite", "bookworm")
    print(f"bench/replication.py on the lab's {suite} pair")
    if args.what in (None, "lag"):
        lag(lab, getattr(args, "messages", 40))
    else:
        if suite == "bookworm":
            raise SystemExit("sweep measures mxctl-dsync: build the lab with --suite trixie")
        sweep(lab, args.users)
    return 0


if __name__ == "__main__":
    sys.exit(main())
