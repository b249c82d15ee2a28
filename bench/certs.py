"""Bench: ACME DNS-01 issuance time through a real Pebble and a real BIND9 pair.

One issuance = a new order for two names (a host's name and the client-facing name):
publish both TXT records by RFC 2136 (TSIG, compare-and-swap), wait until BOTH
authoritative servers serve them (the secondary gets them by NOTIFY + IXFR), let Pebble
validate them at the primary, finalise, download the chain, remove the records. Printed:
the time of the whole issuance and of its DNS part (publish + propagation), p50 and max,
and DNS messages sent per issuance. Pebble validates at once (PEBBLE_VA_NOSLEEP); a
public CA adds its own queueing and multi-perspective lookups on top.

Run: .venv/bin/python bench/certs.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/dns.py would shadow dnspython: drop this directory from the path, put the
# repository root first (as bench/dns.py does).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from mxlab.standins.dnsenv import bind_env
from mxlab.standins.dnsservers import BindPair
from mxlab.standins.pebble import Pebble

from orchestrator.certs.account import load_or_create_account_key
from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.issuer import AcmeIssuer, AcmeServer
from orchestrator.certs.store import new_private_key_pem
from orchestrator.dns.factory import make_verifier

NAMES = ("mx1.example.test", "mail.example.test")


class TimedRecords(ChallengeRecords):
    """ChallengeRecords that note how long publishing and propagation took."""

    dns_seconds = 0.0

    def publish(self, domain: str, validation: str) -> str:
        start = time.perf_counter()
        try:
            return super().publish(domain, validation)
        finally:
            self.dns_seconds += time.perf_counter() - start

    def wait_served(self) -> None:
        start = time.perf_counter()
        try:
            super().wait_served()
        finally:
            self.dns_seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mxctl-bench-certs-") as tmp:
        work = Path(tmp)
        bind = BindPair(work / "bind").start()
        pebble = Pebble(work / "pebble", f"{bind.address}:{bind.port}")
        try:
            pebble.start()
            env = bind_env(bind)
            server = AcmeServer(pebble.directory_url, ca_bundle=pebble.listener_ca)
            issuer = AcmeIssuer(server, load_or_create_account_key(work / "account.key"))
            total, dns_part, messages = [], [], []
            for _ in range(args.rounds):
                provider = env.provider()
                records = TimedRecords(provider, make_verifier(env.config, provider).wait)
                start = time.perf_counter()
                issued = issuer.issue(NAMES, new_private_key_pem(), records)
                total.append(time.perf_counter() - start)
                dns_part.append(records.dns_seconds)
                messages.append(provider.requests)
                assert issued.facts.names == frozenset(NAMES)
                provider.close()
        finally:
            pebble.stop()
            bind.stop()
    print(f"ACME DNS-01 issuance, 2 names, Pebble + BIND9 pair on loopback, {args.rounds} rounds")
    for label, values in (
        ("whole issuance", total),
        ("DNS: publish + served by both NS", dns_part),
    ):
        print(
            f"  {label:34s} p50 {statistics.median(values) * 1000:7.0f} ms   "
            f"max {max(values) * 1000:7.0f} ms"
        )
    print(
        f"  DNS messages per issuance (RFC 2136 reads + updates): {statistics.median(messages):.0f}"
    )


if __name__ == "__main__":
    main()
