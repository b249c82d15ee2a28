"""Bench: per DNS provider, apply-to-verified time and API requests per rewrite.

One rewrite = the plan that moves mail between mx1 and mx2: both zones' MX, `mail` A and
`mail` AAAA (4 RRsets). For each provider we time from the start of apply to "every
authoritative server serves the new records with one serial" and count the provider's
API requests (RFC 2136: DNS messages) to plan and to apply.

Servers are real and local (BIND9 primary + NOTIFY/AXFR secondary, PowerDNS), started
here and stopped at the end. Cloudflare is the in-repo stand-in (lab/mxlab/
standins/cloudflare.py) driven by the real SDK. Its edge takes each committed record
operation separately, `--edge-delay` seconds apart (Cloudflare documents that a batch
propagates non-atomically), and publishes every edge step into the BIND pair by RFC
2136, so its figure is our API path plus a modelled edge, not Cloudflare's real one.
Route 53 is moto's server on loopback driven by real boto3: moto serves no DNS and
answers INSYNC at once, so its figure is apply -> INSYNC (the provider's own proof) and
measures our API path and request count only.

Run: .venv/bin/python bench/dns.py [--rounds N] [--edge-delay S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This file is named dns.py: drop its directory from the path, or `import dns` (dnspython)
# would import this script. The repository root goes first instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import dns.query
import dns.tsig
import dns.update
from mxlab.standins import dnsenv as setups
from mxlab.standins import route53_moto
from mxlab.standins.dnsservers import TSIG_NAME, TSIG_SECRET, BindPair, PowerDns

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.dns.factory import make_provider, make_verifier
from orchestrator.dns.plan import apply_plan, build_plan
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.route53 import Route53Provider

OWNED_KEYS = [
    ("example.test.", "MX"),
    ("example.org.", "MX"),
    ("mail.example.test.", "A"),
    ("mail.example.test.", "AAAA"),
]


EMPTY_STEPS: list[str] = []


def publish_into(bind: BindPair) -> Any:
    """Mirror the stand-in's edge for the owned names into the BIND primary, one
    unconditional RFC 2136 UPDATE per edge step; count steps that left MX or A empty."""
    key = dns.tsig.Key(TSIG_NAME, TSIG_SECRET, "hmac-sha256")
    EMPTY_STEPS.clear()

    def publish(zone: str, records: dict[str, dict[str, Any]]) -> None:
        update = dns.update.UpdateMessage(zone + ".", keyring=key)
        for name, rtype in OWNED_KEYS:
            if not name.endswith(zone + "."):
                continue
            rdatas = []
            ttl = 300
            for record in records.values():
                if record["name"] + "." == name and record["type"] == rtype:
                    ttl = int(record["ttl"])
                    content = record["content"]
                    if rtype == "MX":
                        content = f"{int(record['priority'])} {content}."
                    rdatas.append(content)
            if rdatas:
                update.replace(name, ttl, rtype, *rdatas)
            else:
                update.delete(name, rtype)
                if rtype in ("MX", "A"):
                    EMPTY_STEPS.append(f"{name} {rtype}")
        response = dns.query.tcp(update, bind.address, port=bind.port, timeout=5)
        if response.rcode() != 0:
            raise RuntimeError(f"publishing {zone} into BIND failed: {response.rcode()!r}")

    return publish


def run(
    name: str,
    setup: setups.ProviderEnv,
    rounds: int,
    pause: float,
    by_dns: bool = True,
    reset: Callable[[BaseProvider], None] | None = None,
) -> dict[str, Any]:
    """`by_dns`: verified at every authoritative server; else the provider's INSYNC.
    `reset`: put the baseline back before each round, which then always moves to mx2."""
    # Poll every 10 ms so the figure is not rounded up to the tests' 100 ms interval.
    config = setups.load_dns(setup.config_text.replace("interval = 0.1", "interval = 0.01"))
    provider = make_provider(config, SYSTEM_CLOCK)
    verifier = make_verifier(config, provider, SYSTEM_CLOCK)
    times, plan_requests, apply_requests, changes = [], [], [], []
    try:
        for i in range(rounds):
            # A failover is an isolated event: let the previous rewrite's NOTIFYs settle
            # (BIND delays a NOTIFY that follows another closely).
            time.sleep(pause)
            if reset is not None:
                reset(provider)
            host = "mx2.example.test" if i % 2 == 0 or reset else "mx1.example.test"
            before = provider.requests
            plan = build_plan(config, provider, host)
            planned = provider.requests
            start = time.monotonic()
            apply_plan(plan, config, provider)  # includes waiting for the provider's INSYNC
            applied = provider.requests
            if by_dns:
                report = verifier.wait(plan.desired)
                if not report.ok:
                    raise SystemExit(f"{name}: round {i} not verified: {report.problems}")
            times.append(time.monotonic() - start)
            plan_requests.append(planned - before)
            apply_requests.append(applied - planned)
            changes.append(len(plan.changes))
    finally:
        provider.close()
    return {
        "provider": name,
        "median_s": statistics.median(times),
        "max_s": max(times),
        "plan_requests": statistics.median(plan_requests),
        "apply_requests": statistics.median(apply_requests),
        "rrsets": statistics.median(changes),
        "servers": len(verifier.targets("example.test.")) if by_dns else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rewrites")
    parser.add_argument(
        "--edge-delay",
        type=float,
        default=0.25,
        help="seconds between two record operations reaching the Cloudflare stand-in's edge",
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="mxctl-bench-dns-") as tmp:
        bind = BindPair(Path(tmp) / "bind")
        pdns = PowerDns(Path(tmp) / "pdns")
        try:
            bind.start()
            pdns.start()
            results.append(run("rfc2136 -> BIND", setups.bind_env(bind), args.rounds, args.pause))
            results.append(
                run("rfc2136 -> PowerDNS", setups.pdns_rfc2136_env(pdns), args.rounds, args.pause)
            )
            results.append(
                run("PowerDNS HTTP API", setups.pdns_api_env(pdns), args.rounds, args.pause)
            )
            standin = setups.make_standin()
            try:
                setups.bind_env(bind)  # back to the baseline, which the stand-in also holds
                standin.publish = publish_into(bind)
                standin.edge_delay = args.edge_delay
                cf = setups.cloudflare_env(standin)
                endpoints = ", ".join(f'"{e}"' for e in bind.endpoints)
                cf.config_text = cf.config_text.replace(
                    "nameservers = []", f"nameservers = [{endpoints}]"
                )
                label = f"Cloudflare (edge {args.edge_delay:g} s/op)"
                results.append(run(label, cf, args.rounds, args.pause))
            finally:
                standin.stop()
            moto = route53_moto.start_moto()
            try:
                r53 = setups.route53_env(moto)

                def fresh_moto(provider: BaseProvider) -> None:
                    # moto refuses a CREATE identical to one in its journal (not Route 53's
                    # behaviour), so each round starts from a freshly reset moto; the zone
                    # ids are looked up again outside the measured part.
                    route53_moto.reset_zones(moto)
                    assert isinstance(provider, Route53Provider)
                    provider.forget_zone_ids()
                    for zone in ("example.test.", "example.org."):
                        provider.read(zone, "NS")

                label = "Route 53 (moto, INSYNC)"
                results.append(run(label, r53, args.rounds, 0.0, False, fresh_moto))
            finally:
                moto.stop()
        finally:
            pdns.stop()
            bind.stop()
    print(
        f"DNS rewrite bench: {args.rounds} rewrites per provider, 4 RRsets in 2 zones each, "
        f"{args.pause:g} s apart, loopback (servers 0: confirmed by the provider, not by DNS)"
    )
    header = f"{'provider':<28}{'median apply->verified':>24}{'max':>9}{'servers':>9}"
    header += f"{'requests/rewrite (plan+apply)':>32}{'per RRset':>11}"
    print(header)
    for r in results:
        total = r["plan_requests"] + r["apply_requests"]
        per = r["apply_requests"] / r["rrsets"]
        print(
            f"{r['provider']:<28}{r['median_s'] * 1000:>21.1f} ms{r['max_s'] * 1000:>6.0f} ms"
            f"{r['servers']:>9}{total:>17g} ({r['plan_requests']:g}+{r['apply_requests']:g})"
            f"{per:>13.2f}"
        )
    print(f"Cloudflare edge steps that left an owned MX or A set empty: {len(EMPTY_STEPS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
