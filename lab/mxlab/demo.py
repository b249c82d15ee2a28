"""`make demo`: the whole story on the local lab, with real hosts, real DNS, real mail.

1. build and boot the lab; 2. have the lab's ACME server (Pebble on `acme`) issue both
hosts' certificates, DNS-01 answered through BIND; 3. deploy the mail pair (with those
certificates) and the outside sender with pyinfra; 4. start the controller and a witness
(it lists the standby as backup MX); 5. send mail through `sender`, a remote MTA behind a
caching resolver; 6. kill the primary silently (no reset: the world waits out its
connect timeouts) and watch the controller fail over, while a mail user on `client`
(behind the same cache) waits for new mail; 7.-8. show the MX at both nameservers, the
certificate the new primary serves, and the downtime as the world saw it; 9. recover the
old primary (it stays fenced), resync, and count what was lost. No queue is ever flushed
by hand: the remote MTA retries on Postfix's own schedule.
"""

from __future__ import annotations

import json
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

from mxlab import acmehost, control, lab
from mxlab.controlled import ControlledLab, mx_at, serial_at, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailclient import served_certificate
from mxlab.mailtraffic import SteadySender, arrivals_on, message, subjects_on
from mxlab.state import LabState, state_dir
from mxlab.worldview import ClientWatch
from orchestrator.deploy import runner
from orchestrator.errors import MxctlError

MX2 = ["10 mx2.example.test."]
CLIENT_NAME = "mail.example.test"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def show_dns(state: LabState) -> None:
    for ns in state.nameservers():
        for zone in state.zones:
            mx = ", ".join(mx_at(ns.address, zone))
            print(f"  {ns.name}: {zone:13} MX {mx:24} serial {serial_at(ns.address, zone)}")


def issue_certificates(state: LabState, config: Path) -> None:
    """`mxctl cert renew` into the lab's store (the deploy that follows installs it): the
    ACME server asks the lab's BIND for each `_acme-challenge` TXT mxctl writes."""
    with config.open("a") as f:
        f.write(acmehost.certs_section(state, acmehost.store_dir(), CLIENT_NAME))
    mxctl = Path(sys.executable).parent / "mxctl"
    renew = subprocess.run(
        [str(mxctl), "cert", "renew", "--no-install", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if renew.returncode != 0:
        raise MxctlError(f"mxctl cert renew failed: {renew.stdout[-1000:]}{renew.stderr[-2000:]}")
    for result in json.loads(renew.stdout)["results"]:
        print(f"  {result['name']}: {result['outcome']} ({result.get('reason', '')})")


def show_served_certificate(state: LabState, host: str) -> None:
    """What a client connecting to the client-facing name now gets on `host`: verified
    against Pebble's root alone, for the name clients use."""
    context = ssl.create_default_context(cafile=str(acmehost.root_path()))
    cert = served_certificate(state.host(host).address, CLIENT_NAME, context)
    issuer = dict(x[0] for x in cert.get("issuer", ()))  # type: ignore[attr-defined]
    print(f"  {host} serves {CLIENT_NAME} on 993 with a certificate from "
          f"{issuer.get('commonName', '?')!r}, valid until {cert.get('notAfter')}, "
          "verified against Pebble's root only")  # fmt: skip


def run() -> int:
    started = time.monotonic()
    step("1. Build and boot the lab (network namespaces, systemd-nspawn hosts, BIND9 pair)")
    state = lab.up()
    for row in control.status():
        print(
            f"  {row.name:7} {row.address:14} {row.role:14} ssh {'open' if row.ssh_open else '-'}"
        )
    workdir = state_dir() / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = write_config(state, workdir)
    step("2. Certificates for both hosts from the lab's ACME server (Pebble on acme), DNS-01")
    issue_certificates(state, config)
    step("3. Deploy the mail pair and the outside sender with pyinfra, over SSH")
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        print(result.stderr[-3000:], file=sys.stderr)
        raise MxctlError(f"deploy failed: {result.failed()}")
    print(f"  deployed in {result.seconds:.1f} s: {result.summary()}")
    run = ControlledLab(state, workdir, config)
    run.restore()  # mx1 primary and MX, nothing fenced: the starting point
    step("4. Start the controller (mxctl watch) and a witness on sender (mxctl witness)")
    run.start_witness()
    run.start_controller()
    status = run.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    print(f"  controller: {status['last_cycle']}")
    print(f"  observers: {status['observations']}")
    show_dns(state)
    step("5. Mail flows: sender hands 20 messages/s to the MX (mx1; mx2 is the backup MX)")
    prefix = f"demo-{int(time.time())}"
    traffic = SteadySender(state, prefix, 20)
    traffic.start()
    time.sleep(3)
    step(
        "6. mx1 dies silently (every process killed, every packet dropped: no reset, no "
        "ICMP) and the controller is watched"
    )
    crashed, crashed_at = time.monotonic(), time.time()
    control.fault("mx1", "down")
    # A mail user behind the caching resolver, waiting for a message sent after the crash.
    client_subject = f"{prefix}-for-the-client"
    watch = ClientWatch(state, client_subject, timeout=180)
    with smtplib.SMTP(state.host("sender").address, 25, local_hostname="demo.example.test") as s:
        s.send_message(message(client_subject))
    seen, rto = "", None
    while time.monotonic() - crashed < 60:
        sentence = run.status()["last_cycle"]
        if sentence != seen:
            print(f"  +{time.monotonic() - crashed:4.1f} s  {sentence}", flush=True)
            seen = sentence
        if rto is None and all(mx_at(ns) == MX2 for ns in run.nameservers()):
            rto = time.monotonic() - crashed
            print(f"  +{rto:4.1f} s  every authoritative server serves MX mx2")
        if rto is not None and run.status()["primary"] == "mx2.example.test":
            break
        time.sleep(0.05)
    time.sleep(3)
    traffic.stop.set()
    traffic.join()
    step("7. DNS after the failover, at both nameservers")
    show_dns(state)
    step("8. What the world saw: sender and client resolve through the caching resolver")
    # sender's connection to the silent mx1 waits its smtp_connect_timeout before it
    # tries the backup MX: mail handed over meanwhile arrives that much later.
    connect = control.exec_in("sender", ["postconf", "-h", "smtp_connect_timeout"], capture=True)
    wait_s = float(connect.stdout.strip().rstrip("s") or 30)
    print(f"  sender waits {wait_s:g} s (smtp_connect_timeout) for a silent MX host")
    during = [s for s, t in traffic.accepted_at.items() if t >= crashed_at]
    deadline = time.time() + wait_s + 15
    arrived = arrivals_on(state, "mx2", prefix)
    while time.time() < deadline and not set(during) <= set(arrived):
        time.sleep(1)
        arrived = arrivals_on(state, "mx2", prefix)
    delays = sorted(max(0.0, arrived[s] - traffic.accepted_at[s]) for s in during if s in arrived)
    if delays:
        print(f"  {len(delays)} of {len(during)} messages handed to sender after the crash "
              f"are readable on mx2; delay max {delays[-1]:.0f} s (1 s resolution)")  # fmt: skip
    show_served_certificate(state, "mx2")
    sighting = watch.result()
    client_rto = sighting.at - crashed_at if sighting.ok else None
    if client_rto is not None:
        print(f"  the mail user on client logged in at {sighting.address} and saw the new "
              f"message {client_rto:.1f} s after the crash (client-name TTL included)")  # fmt: skip
    else:
        print(f"  the mail user on client did not see the new message: {sighting.last_error}")
    step("9. Recover mx1: it boots fenced; the controller drains its queue and resyncs")
    control.fault("mx1", "up")
    accepted = set(traffic.accepted)
    missing = accepted
    for _ in range(90):  # sender retries deferred mail on its own schedule; we only look
        missing = accepted - subjects_on(state, "mx2", prefix)
        if not missing:
            break
        time.sleep(1)
    status = run.status()
    print(f"  primary {status['primary']}, fenced: {', '.join(status['fenced'])}")
    step("10. What the controller did and why (mxctl history)")
    for e in [e for e in run.journal_events() if e.kind in ("decision", "step")][-16:]:
        if e.kind == "step" and e.status == "started":
            continue
        print(f"  {e.at[11:23]}  {e.kind:8} {e.subject:18} {e.status:7} {e.reason[:90]}")
    step("Result")
    print(f"  RTO: {rto:.1f} s from the crash to the new MX at every nameserver" if rto else
          "  RTO: the MX did not move within 60 s")  # fmt: skip
    if client_rto is not None:
        print(f"  client RTO: {client_rto:.1f} s until a mail user behind a caching resolver "
              "read new mail")  # fmt: skip
    print(f"  mail: {len(accepted)} messages accepted by sender, {len(missing)} not readable "
          "on mx2 (messages lost)")  # fmt: skip
    run.stop("controller")
    run.stop("witness")
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s. The lab stays up in its "
          "failed-over state: `mxctl lab status`; `mxctl lab down` removes it.")  # fmt: skip
    return 0 if rto is not None and not missing and client_rto is not None else 1


def main() -> int:
    try:
        return run()
    except MxctlError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
