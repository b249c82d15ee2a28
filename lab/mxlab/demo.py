"""`make demo`: the whole story on the local lab, with real hosts, real DNS, real mail.

1. build and boot the lab; 2. deploy the mail pair and the outside sender with pyinfra;
3. start the controller and a witness; 4. send mail; 5. crash the primary and watch the
controller fail over; 6. show the MX at both nameservers and the mail on the standby;
7. recover the old primary (it stays fenced), resync, and count what was lost.
"""

from __future__ import annotations

import shutil
import sys
import time

from mxlab import control, lab
from mxlab.controlled import ControlledLab, mx_at, serial_at, write_config
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailtraffic import SteadySender, subjects_on
from mxlab.state import LabState, state_dir
from orchestrator.deploy import runner
from orchestrator.errors import MxctlError

MX2 = ["10 mx2.example.test."]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def show_dns(state: LabState) -> None:
    for ns in state.nameservers():
        for zone in state.zones:
            mx = ", ".join(mx_at(ns.address, zone))
            print(f"  {ns.name}: {zone:13} MX {mx:24} serial {serial_at(ns.address, zone)}")


def run() -> int:
    started = time.monotonic()
    step("1. Build and boot the lab (network namespaces, systemd-nspawn hosts, BIND9 pair)")
    state = lab.up()
    for row in control.status():
        print(
            f"  {row.name:7} {row.address:14} {row.role:14} ssh {'open' if row.ssh_open else '-'}"
        )
    step("2. Deploy the mail pair and the outside sender with pyinfra, over SSH")
    result = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOY)
    if not result.ok:
        print(result.stderr[-3000:], file=sys.stderr)
        raise MxctlError(f"deploy failed: {result.failed()}")
    print(f"  deployed in {result.seconds:.1f} s: {result.summary()}")
    workdir = state_dir() / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    run = ControlledLab(state, workdir, write_config(state, workdir))
    run.restore()  # mx1 primary and MX, nothing fenced: the starting point
    step("3. Start the controller (mxctl watch) and a witness on sender (mxctl witness)")
    run.start_witness()
    run.start_controller()
    status = run.wait_status(lambda s: "healthy" in s["last_cycle"], 30, "a healthy cycle")
    print(f"  controller: {status['last_cycle']}")
    print(f"  observers: {status['observations']}")
    show_dns(state)
    step("4. Mail flows: sender hands 20 messages/s to the MX (mx1)")
    prefix = f"demo-{int(time.time())}"
    traffic = SteadySender(state, prefix, 20)
    traffic.start()
    time.sleep(3)
    step("5. Crash mx1 (every process killed, no shutdown) and watch the controller")
    crashed = time.monotonic()
    control.fault("mx1", "down")
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
    step("6. DNS after the failover, at both nameservers")
    show_dns(state)
    step("7. Recover mx1: it boots fenced; the controller drains its queue and resyncs")
    control.fault("mx1", "up")
    accepted = set(traffic.accepted)
    missing = accepted
    for _ in range(60):
        control.exec_in("sender", ["postqueue", "-f"], capture=True)
        missing = accepted - subjects_on(state, "mx2", prefix)
        if not missing:
            break
        time.sleep(1)
    status = run.status()
    print(f"  primary {status['primary']}, fenced: {', '.join(status['fenced'])}")
    step("8. What the controller did and why (mxctl history)")
    for e in [e for e in run.journal_events() if e.kind in ("decision", "step")][-16:]:
        if e.kind == "step" and e.status == "started":
            continue
        print(f"  {e.at[11:23]}  {e.kind:8} {e.subject:18} {e.status:7} {e.reason[:90]}")
    step("Result")
    print(f"  RTO: {rto:.1f} s from the crash to the new MX at every nameserver" if rto else
          "  RTO: the MX did not move within 60 s")  # fmt: skip
    print(f"  mail: {len(accepted)} messages accepted by sender, {len(missing)} not readable "
          "on mx2 (messages lost)")  # fmt: skip
    run.stop("controller")
    run.stop("witness")
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s. The lab stays up in its "
          "failed-over state: `mxctl lab status`; `mxctl lab down` removes it.")  # fmt: skip
    return 0 if rto is not None and not missing else 1


def main() -> int:
    try:
        return run()
    except MxctlError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
