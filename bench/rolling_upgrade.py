"""Rolling upgrade of the lab's Debian 12 pair to Debian 13 under steady mail, end to end.

Run as root with a bookworm lab up (`mxctl lab up`, no MXCTL_LAB_SUITE):
`.venv/bin/python bench/rolling_upgrade.py [--rate 5]`. It deploys the pair (Dovecot 2.3,
the replicator), starts steady mail through `sender` (SteadySender) and a watcher that
checks every 100 ms that the host the MX names answers SMTP, then runs `mxctl upgrade`:
switchover to mx2, mx1 to trixie, deploy (Dovecot 2.4 + mxctl-dsync), converge with mx2
(a mixed 2.3/2.4 pair), switchback, then mx2 likewise. The OS upgrade is mxctl's own, in
place: apt sources bookworm -> trixie and `apt-get full-upgrade` over SSH, reading the
release the lab offers its hosts first (`mxctl lab release trixie`: computed here from
each host's dpkg status, downloaded from the mirror apt uses, cached under
/var/cache/mxctl-lab). Prints the release offered (packages, MB, seconds), messages
sent/accepted/lost/bounced, seconds mail was not accepted and per-phase durations. The
owned records get a 30 s TTL (lowered to 5 s) as in bench/switchover.py. Afterwards the
pair is reinstalled on bookworm (`--keep`: left on trixie).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from mxlab import control
from mxlab.controlled import MAIL_HOSTS, ControlledLab, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailtraffic import SteadySender, held_on, lost_after_rpo_flush
from mxlab.rollingupgrade import (
    dovecot_version,
    offer,
    pair_releases,
    reinstall_pair,
    upgrade_command,
    upgraded_in_place,
)
from mxlab.state import LabState, load_lab_state

from bench.switchover import AcceptanceWatch
from orchestrator.deploy import runner

OLD_TTL, LOW_TTL = 30, 5
SENDER_LOG = "/var/log/postfix.log"


def phases(lab: ControlledLab, since: datetime) -> list[tuple[str, str, float]]:
    """(run kind, step, seconds) of every step done since `since`, in order."""
    started: dict[tuple[str, str], datetime] = {}
    kinds: dict[str, str] = {}
    out = []
    for e in lab.journal_events():
        at = datetime.fromisoformat(e.at)
        if e.kind != "step" or not e.run_id or at < since:
            continue
        kind = kinds.setdefault(e.run_id, e.run_id.split("-")[0])
        if e.status == "started":
            started[(e.run_id, e.subject)] = at
        elif e.status == "done" and (e.run_id, e.subject) in started:
            seconds = (at - started[(e.run_id, e.subject)]).total_seconds()
            out.append((kind, e.subject, seconds))
    return out


def sender_log_lines() -> list[str]:
    out = control.exec_in("sender", ["cat", SENDER_LOG], capture=True)
    return out.stdout.splitlines()


def release_of(host: str) -> str:
    return f"{pair_releases()[host]}, Dovecot {dovecot_version(host)}"


def wait_delivered(state: LabState, prefix: str, accepted: set[str], limit: float) -> set[str]:
    """Accepted subjects on neither host after up to `limit` s (no queue flushed)."""
    deadline = time.monotonic() + limit
    missing = set(accepted)
    while True:
        missing = accepted - held_on(state, MAIL_HOSTS, prefix)
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="messages per second")
    parser.add_argument("--keep", action="store_true", help="leave the pair on trixie")
    args = parser.parse_args()
    state = load_lab_state()
    suites = pair_releases()
    if suites != {"mx1": "bookworm", "mx2": "bookworm"}:
        raise SystemExit(
            f"bench/rolling_upgrade.py needs a bookworm pair, not {suites}: unset "
            "MXCTL_LAB_SUITE, or `mxctl lab recreate mx1 mx2 --suite bookworm`"
        )
    started_deploy = time.monotonic()
    if not runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY).ok:
        raise SystemExit("deploy failed")
    print(f"deploy of the Debian 12 pair: {time.monotonic() - started_deploy:.0f} s")
    print(f"release offered: {offer('trixie').summary()}")
    with tempfile.TemporaryDirectory(prefix="mxctl-bench-") as tmp:
        path = write_config(state, Path(tmp), ttl=OLD_TTL)
        path.write_text(path.read_text() + f"\n[maintenance]\nlow_ttl = {LOW_TTL}\n")
        lab = ControlledLab(state, Path(tmp), path)
        lab.restore()
        print("before: " + "; ".join(f"{h} {release_of(h)}" for h in ("mx1", "mx2")))
        log_before = len(sender_log_lines())
        since = datetime.now().astimezone()
        traffic = SteadySender(state, f"upgrade-{int(time.time())}", args.rate)
        watch = AcceptanceWatch(lab)
        traffic.start()
        watch.start()
        began = time.monotonic()
        proc = subprocess.run(upgrade_command(path), capture_output=True, text=True)
        took = time.monotonic() - began
        watch.stop.set()
        traffic.stop.set()
        traffic.join()
        watch.join()
        print(proc.stdout.rstrip())
        if proc.returncode != 0:
            print(proc.stderr.rstrip()[-3000:])
            print(f"mxctl upgrade FAILED after {took:.0f} s")
        accepted = set(traffic.accepted)
        sent = len(accepted) + traffic.refused
        missing = wait_delivered(state, traffic.prefix, accepted, 120)
        late = set(missing)
        if missing:  # late or lost? (every figure above was taken without a flush)
            missing = lost_after_rpo_flush(state, MAIL_HOSTS, traffic.prefix, missing, 60)
        new_log = sender_log_lines()[log_before:]
        bounced = sum("status=bounced" in line for line in new_log)
        deferred = sum("status=deferred" in line for line in new_log)
        print(f"\nmxctl upgrade: {took:.1f} s in all (rc {proc.returncode})")
        print("after: " + "; ".join(f"{h} {release_of(h)}" for h in ("mx1", "mx2")))
        in_place = [h for h in ("mx1", "mx2") if upgraded_in_place(h)]
        print(f"upgraded in place by apt (dpkg.log): {', '.join(in_place) or 'none'}")
        print("phases:")
        for kind, step, seconds in phases(lab, since):
            print(f"  {kind:10} {step:22} {seconds:7.2f} s")
        print(
            f"messages: {sent} sent, {len(accepted)} accepted by sender, "
            f"{traffic.refused} refused by sender, {len(missing)} lost (on neither host), "
            f"{len(late)} not there within 120 s without a flush, "
            f"{bounced} bounced, {deferred} deferral log lines at sender"
        )
        print(
            f"mail not accepted: {watch.misses * 0.1:.1f} s "
            f"({watch.misses} of {watch.checks} checks every 100 ms)"
        )
        if missing:
            print("lost: " + ", ".join(sorted(missing)[:20]))
        if not args.keep:  # `make bench` runs the other benches on a Debian 12 pair
            reinstall_pair("bookworm")
            lab.restore()
            print("the pair is back on bookworm (reinstalled, its mail gone; --keep: stay)")
        return 0 if proc.returncode == 0 and not missing and not bounced else 1


if __name__ == "__main__":
    sys.exit(main())
