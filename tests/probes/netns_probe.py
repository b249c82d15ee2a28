"""Run lab probes from inside another lab host's network namespace (a vantage point).

`ip netns exec mxlab-sender python -m tests.probes.netns_probe mx2 imaps --wrong-password`
prints one JSON result per line. Used where the source address matters: Dovecot delays
and penalises failed logins per client address, so wrong-password tests come from the
sender's address, not from the machine every other test and engineer logs in from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace

from mxlab.state import load_lab_state
from mxlab.targets import lab_settings

from orchestrator.clock import SYSTEM_CLOCK
from orchestrator.config.secrets import Secret
from orchestrator.probes.services import probe_service
from orchestrator.probes.settings import ProbeUser, Timeouts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("probes", nargs="+")
    parser.add_argument("--wrong-password", action="store_true")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    settings = lab_settings(load_lab_state())
    t = args.timeout
    settings = replace(settings, timeouts=Timeouts(smtp=t, submission=t, imap=t))
    if args.wrong_password:
        wrong = ProbeUser(settings.probe_user.address, Secret("not-the-probe-password"))
        settings = replace(settings, probe_user=wrong)
    host = settings.host(args.host)

    async def run() -> None:
        for name in args.probes:  # one after another: each login is judged on its own
            result = await probe_service(name, settings, host, SYSTEM_CLOCK)
            print(json.dumps(result.to_json()), flush=True)

    asyncio.run(run())


if __name__ == "__main__":
    main()
