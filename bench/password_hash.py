"""Bench: what a password hash costs at login, for the parameters in orchestrator/deploy/cryptpw.py.

Dovecot's auth worker recomputes the hash on every login (no auth cache) and the probe logs
in every second on each host, so this cost is paid continuously. Printed, per scheme: the
time to hash (the deploying machine, once per password change) and to verify with
argon2-cffi and with libsodium's crypto_pwhash_str_verify (the call Dovecot makes on the
host), median of N; the legacy SHA512-CRYPT (5000 rounds, libpass) for comparison.

With --lab: the time of an IMAP LOGIN of the probe user on mx1 of the running lab (IMAPS,
verified against the lab CA), median of N, which adds Dovecot's auth round trip.

Run: .venv/bin/python bench/password_hash.py [--rounds N] [--lab]
"""

from __future__ import annotations

import argparse
import ctypes
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import argon2
from passlib.hash import sha512_crypt

from orchestrator.deploy import cryptpw

PASSWORD = "a-probe-password-of-32-characters"


def median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def sodium_verify(sodium: ctypes.CDLL, body: str) -> None:
    secret = PASSWORD.encode()
    ok = sodium.crypto_pwhash_str_verify(
        ctypes.c_char_p(body.encode()), ctypes.c_char_p(secret), ctypes.c_ulonglong(len(secret))
    )
    if ok != 0:
        raise SystemExit(f"libsodium refused the hash {body[:40]}...")


def argon2_row(name: str, hasher: argon2.PasswordHasher, sodium: ctypes.CDLL, rounds: int) -> None:
    body = hasher.hash(PASSWORD)
    hash_ms = median_ms(lambda: hasher.hash(PASSWORD), rounds)
    verify_ms = median_ms(lambda: hasher.verify(body, PASSWORD), rounds)
    sodium_ms = median_ms(lambda: sodium_verify(sodium, body), rounds)
    print(f"{name:<48}{hash_ms:>9.1f} ms{verify_ms:>12.1f} ms{sodium_ms:>15.1f} ms")


def lab_login_ms(rounds: int) -> float:
    from mxlab import acmehost
    from mxlab.mailtraffic import Imaps
    from mxlab.state import load_lab_state

    from orchestrator.deploy import labinv

    lab = load_lab_state()
    password = labinv.user_secret_path(labinv.PROBE_USER).read_text().strip()
    context = ssl.create_default_context(cafile=acmehost.trust_file(lab))
    times = []
    for _ in range(rounds):
        with Imaps(lab.host("mx1").address, "mail.example.test", context) as client:
            start = time.perf_counter()
            client.login(labinv.PROBE_USER, password)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--lab", action="store_true", help="also time IMAP LOGIN on the lab")
    args = parser.parse_args()
    sodium = ctypes.CDLL("libsodium.so.23")
    if sodium.sodium_init() < 0:
        raise SystemExit("libsodium failed to initialise")
    print(f"Password hash bench: median of {args.rounds}, one core of this machine")
    print(f"{'scheme':<48}{'hash':>12}{'verify (cffi)':>15}{'verify (sodium)':>18}")
    chosen = argon2.PasswordHasher(
        time_cost=cryptpw.TIME_COST,
        memory_cost=cryptpw.MEMORY_KIB,
        parallelism=cryptpw.PARALLELISM,
        type=argon2.Type.ID,
    )
    label = f"ARGON2ID m={cryptpw.MEMORY_KIB // 1024}MiB t={cryptpw.TIME_COST} p=1 (mxctl)"
    argon2_row(label, chosen, sodium, args.rounds)
    interactive = argon2.PasswordHasher(
        time_cost=2, memory_cost=65536, parallelism=1, type=argon2.Type.ID
    )
    argon2_row("ARGON2ID m=64MiB t=2 p=1 (sodium interactive)", interactive, sodium, args.rounds)
    legacy = sha512_crypt.using(rounds=5000).hash(PASSWORD)
    legacy_ms = median_ms(lambda: sha512_crypt.verify(PASSWORD, legacy), args.rounds)
    print(f"{'SHA512-CRYPT 5000 rounds (legacy, libpass)':<48}{'-':>12}{legacy_ms:>12.1f} ms")
    if args.lab:
        print(f"IMAP LOGIN on lab mx1 (probe user, IMAPS): {lab_login_ms(args.rounds):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
