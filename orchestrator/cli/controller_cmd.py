"""`mxctl watch|witness|status|history|ack|pause|resume`: the failover controller."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from orchestrator.api.server import HttpService, Route, json_reply, server_tls
from orchestrator.backup.watch import BackupCollector, BackupWatch, cached_health
from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.cluster.member import ClusterMember
from orchestrator.cluster.requests import request_store
from orchestrator.config.loader import MxctlConfig, load_config
from orchestrator.controller import switching
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller, OperatorRequests
from orchestrator.controller.observe import client_tls
from orchestrator.controller.operator import RequestStore
from orchestrator.controller.switching import controller_lock
from orchestrator.controller.witness import Witness
from orchestrator.deploy.tlscerts import dns_names
from orchestrator.drills.record import DrillCollector
from orchestrator.drills.record import last_result as last_drill_result

REQUIRED = ("dns", "pair", "ssh", "probes")
OPERATOR_ACTIONS = ("ack", "pause", "resume")


def register(subparsers: Any) -> None:
    def command(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--config", type=Path, help="mxctl.toml (default: $MXCTL_CONFIG)")
        parser.set_defaults(func=func)
        return parser

    watch = command("watch", "run the failover controller (observe, decide, act)", cmd_watch)
    watch.add_argument("--once", action="store_true", help="run one cycle and exit")
    witness = command("witness", "probe from this vantage point and serve the report",
                      cmd_witness)  # fmt: skip
    witness.add_argument("--name", required=True, help="this witness's name in [witnesses]")
    witness.add_argument("--listen", help="address to bind (default: the host in its url)")
    witness.add_argument("--once", action="store_true", help="one round, print it, exit")
    status = command("status", "the pair, roles, observations, blocks", cmd_status)
    status.add_argument("--json", action="store_true")
    history = command("history", "what the controller decided and did, and why", cmd_history)
    history.add_argument("--json", action="store_true")
    history.add_argument("--limit", type=int, default=50)
    command("ack", "acknowledge a failover: lift the anti-flap block", cmd_ack)
    command("pause", "stop every automatic action, keep reporting (journaled)", cmd_pause)
    command("resume", "let automatic actions run again (journaled)", cmd_resume)
    command("cancel", "withdraw a pending planned move (switchover/switchback)", cmd_cancel)


def _config(args: argparse.Namespace) -> MxctlConfig:
    return load_config(args.config, required=REQUIRED)


def _journal(config: MxctlConfig) -> Journal:
    return Journal(config.pair.state_dir / "journal.db")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def api_service(config: MxctlConfig, controller: Controller) -> HttpService:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def status(_: dict[str, Any]) -> tuple[int, str, bytes]:
        return json_reply(200, controller.status())

    def metrics(_: dict[str, Any]) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(controller.metrics.registry)

    def health(_: dict[str, Any]) -> tuple[int, str, bytes]:
        # 503 when cycles stopped completing or keep raising: automatic failover is off.
        ok, why = controller.health()
        body = {"ok": ok, "reason": why, "last_cycle": controller.last_sentence}
        return json_reply(200 if ok else 503, body)

    def operator(action: str) -> Any:
        def handle(_: dict[str, Any]) -> tuple[int, str, bytes]:
            now, ops = SYSTEM_CLOCK.now(), controller.operator
            if action == "ack":
                ops.request_ack(now, "api")
            else:
                ops.set_paused(action == "pause", now, "api")
            return json_reply(200, {"ok": True, "action": action})

        return handle

    routes = [
        Route("GET", "/status", status, needs_token=False),
        Route("GET", "/metrics", metrics, needs_token=False),
        Route("GET", "/health", health, needs_token=False),
        *[
            Route("POST", f"/{a}", operator(a), needs_token=True)
            for a in ("ack", "pause", "resume")
        ],
    ]
    api = config.api
    tls = server_tls(api.tls.cert, api.tls.key) if api.tls else None
    return HttpService(api.listen, api.port, api.token, routes, tls)


def cmd_watch(args: argparse.Namespace) -> int:
    config = _config(args)
    with controller_lock(config.pair.state_dir):
        journal = _journal(config)
        # [cluster]: one of several controllers on etcd, acting only while it leads.
        cluster = ClusterMember(config.cluster, journal) if config.cluster is not None else None
        controller = Controller(config, journal, cluster=cluster)
        if args.once:
            print(controller.cycle())
            if cluster is not None:
                cluster.elector.resign()
            return 0
        stop = _stop_on_signals()
        backups = BackupWatch(config, _journal(config))  # its own journal connection
        controller.metrics.registry.register(BackupCollector(backups))
        controller.metrics.registry.register(DrillCollector(config.pair.state_dir))
        backups.start(stop)
        service = api_service(config, controller).start()
        try:
            controller.run_forever(stop)
        finally:
            service.stop()
            if cluster is not None:  # a clean stop hands the leadership over at once
                cluster.elector.resign()
    return 0


def cmd_witness(args: argparse.Namespace) -> int:
    config = load_config(args.config, required=("dns", "pair", "probes"))
    witness = Witness(config, args.name)
    if args.once:
        print(json.dumps(witness.observe_once(), indent=2))
        return 0
    witness.run_forever(_stop_on_signals(), args.listen)
    return 0


def _live_status(config: MxctlConfig) -> dict[str, Any] | None:
    api = config.api
    host = api.listen if api.listen not in ("0.0.0.0", "::") else "127.0.0.1"
    try:
        if api.tls:
            # Our own controller, by address: verify the certificate for the name it carries.
            names = dns_names(Path(api.tls.cert))
            with httpx.Client(verify=client_tls(api.ca_file), timeout=2) as client:
                request = client.build_request(
                    "GET",
                    f"https://{host}:{api.port}/status",
                    extensions={"sni_hostname": names[0]} if names else {},
                )
                reply = client.send(request)
        else:
            reply = httpx.get(f"http://{host}:{api.port}/status", timeout=2)
        reply.raise_for_status()
        return dict(reply.json())
    except (httpx.HTTPError, ValueError):
        return None


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    live = _live_status(config)
    journal = _journal(config)
    if live is None:
        controller = Controller(config, journal)
        live = controller.status()
        live["last_cycle"] = "no controller is running (`mxctl watch`)"
        live["health"] = {"ok": False, "reason": "no controller is running"}
    last = journal.last_decision()
    live["last_decision"] = None if last is None else {"at": last.at, "outcome": last.subject,
                                                       "reason": last.reason}  # fmt: skip
    live["runs"] = [r.__dict__ for r in journal.runs()[-5:]]
    backup = cached_health(config.pair.state_dir)
    live["backup"] = None if backup is None else backup.as_dict()
    live["failover_drill"] = last_drill = last_drill_result(config.pair.state_dir)
    if args.json:
        print(json.dumps(live, indent=2, default=str))
        return 0
    print(f"primary: {live['primary']}   standby: {live['standby']}")
    print(f"fenced: {', '.join(live['fenced']) or '-'}   paused: {live['paused']}   "
          f"blocked until: {live['blocked_until'] or '-'}")  # fmt: skip
    for held in live.get("held_by_pause") or []:
        print(f"HELD BY PAUSE: {held}")
    print(f"last cycle: {live['last_cycle']}")
    cluster = live.get("cluster")
    if cluster:  # [cluster]: only when this controller is one of several
        print(f"cluster {cluster['name']}: leader {cluster['leader'] or '-'} (term "
              f"{cluster['term'] or '-'}); {cluster['member']} is {cluster['role']}; "
              f"etcd {cluster['etcd']}")  # fmt: skip
    health = live.get("health") or {}
    if health and not health.get("ok"):
        print(f"UNHEALTHY: {health.get('reason')}")
    voting = live.get("voting") or {}
    if voting:
        print(f"observers: {len(voting['voting'])} of {voting['configured']} vote "
              f"(majority of all configured: {voting['majority']})")  # fmt: skip
    else:
        print("observers:")
    for row in live.get("observers", []):
        votes = ", ".join(f"{h} {v}" for h, v in row["votes"].items())
        if row.get("voting", True):
            print(f"  {row['observer']}: votes: {votes}")
        else:
            cycles = row.get("abstained_cycles", 0)
            print(f"  {row['observer']}: ABSTAINS for {cycles} cycle(s): {row['note']}"
                  + (f" ({votes})" if votes else ""))  # fmt: skip
    for host, q in (live.get("quorum") or {}).items():
        print(f"  {host}: failed by {len(q['failed'])}, up by {len(q['up'])}, "
              f"{q['needed']} needed to call it dead")  # fmt: skip
    if live.get("dns"):
        print(f"dns: {live['dns']}")
    alerts = live.get("alerts", [])
    print(f"open alerts: {len(alerts)}")
    for alert in alerts:
        print(f"  {alert['key']} since {alert['since']}: {alert['reason']}")
    if live["last_decision"]:
        d = live["last_decision"]
        print(f"last decision ({d['at']}): {d['outcome']}: {d['reason']}")
    for run in live["runs"]:
        print(f"run {run['run_id']}: {run['from_host']} -> {run['to_host']} {run['status']}")
    if backup is not None:
        drill = backup.drill_result or "never run"
        print(f"{'ALERT: ' if backup.stale else ''}backups: {backup.why}; last drill: {drill}")
    if last_drill is not None:
        print(
            f"last failover drill ({last_drill['at'][:19]}): {last_drill['result']}: "
            f"{last_drill['why']}"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    journal = _journal(_config(args))
    events = journal.events(limit=args.limit)
    if args.json:
        print(json.dumps([e.__dict__ for e in events], indent=2, default=str))
        return 0
    for e in events:
        run = f" [{e.run_id}]" if e.run_id else ""
        print(f"{e.at}  {e.kind:9} {e.subject:20} {e.status:9} {e.reason}{run}")
    return 0


@contextlib.contextmanager
def _requests(args: argparse.Namespace) -> Iterator[RequestStore]:
    """The store the request goes to: the cluster's with `[cluster]`, else the journal."""
    config = _config(args)
    with request_store(config, _journal(config)) as store:
        yield store


def cmd_ack(args: argparse.Namespace) -> int:
    with _requests(args) as store:
        OperatorRequests(store).request_ack(SYSTEM_CLOCK.now(), getpass.getuser())
    print("acknowledged: the controller lifts the anti-flap block at its next cycle")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    with _requests(args) as store:
        OperatorRequests(store).set_paused(True, SYSTEM_CLOCK.now(), getpass.getuser())
    print("automation paused: no failover, fencing or DNS repair until `mxctl resume`")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _requests(args) as store:
        print(switching.cancel(store, getpass.getuser(), SYSTEM_CLOCK.now()))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    with _requests(args) as store:
        OperatorRequests(store).set_paused(False, SYSTEM_CLOCK.now(), getpass.getuser())
    print("automatic failover resumed")
    return 0
