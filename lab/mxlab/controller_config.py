"""The controller's sections of the lab's mxctl.toml (the DNS part is mxctl_config.py).

The controller runs on the machine (10.254.77.1 on the lab bridge); one witness runs in
`sender`'s network namespace, so it sees the mail hosts from an outside host's vantage
point. Secrets stay in 0600 files under the lab state directory and are referenced.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from mxlab import acmehost
from mxlab.credentials import write_secret
from mxlab.state import LabState, state_dir
from orchestrator.deploy.tlscerts import issue_lab_cert

WITNESS_PORT = 8427
API_PORT = 8426
PROBE_USER = "probe@example.test"


def _q(value: str) -> str:
    return json.dumps(value)


def witness_token_file() -> Path:
    path = state_dir() / "secrets" / "witness-sender.token"
    if not path.exists():
        write_secret(path, secrets.token_urlsafe(24) + "\n")
    return path


def probe_password_file() -> Path:
    # Created by the lab inventory (mxlab/inventory.py) at the first deploy.
    return state_dir() / "secrets" / f"mail-user-{PROBE_USER.replace('@', '-at-')}"


def render_controller_config(state: LabState) -> str:
    mail = sorted((h for h in state.hosts.values() if h.role == "mail"), key=lambda h: h.name)
    sender = next(h for h in state.hosts.values() if h.role == "sender")
    zone = state.zones[0]
    # The witness serves HTTPS with a lab-CA certificate for the address the controller uses.
    witness_cert, witness_key = issue_lab_cert(
        Path(state.ca_cert), Path(state.ca_key), (sender.address,), state_dir() / "witness-tls"
    )
    lines = [
        "",
        "[pair]",
        f"primary = {_q(mail[0].fqdn)}",
        f"standby = {_q(mail[1].fqdn)}",
        f"state_dir = {_q(str(state_dir() / 'controller'))}",
        "",
        "[ssh]",
        f"user = {_q(state.ssh_user)}",
        f"key_file = {_q(state.ssh_key)}",
        f"known_hosts = {_q(state.known_hosts)}",
        "timeout = 3",
        "",
        "[probes]",
        f"client_name = {_q('mail.' + zone)}",
        f"helo_name = {_q('controller.' + zone)}",
        f"probe_user = {_q(PROBE_USER)}",
        f"probe_password = {_q('file:' + str(probe_password_file()))}",
        f"ca_file = {_q(acmehost.trust_file(state))}",
        "timeout = 1",
        f"canary_domain = {_q(zone)}",
        "canary_nameservers = [" + ", ".join(_q(h.address) for h in state.nameservers()) + "]",
        "canary_every = 10",
        "",
        "[policy]",
        "interval = 1",
        "failure_threshold = 3",
        "max_replication_lag = 60",
        "anti_flap = 3600",
        "failover_deadline = 30",
        "",
        "[witnesses.sender]",
        f"url = {_q(f'https://{sender.address}:{WITNESS_PORT}/report')}",
        f"token = {_q('file:' + str(witness_token_file()))}",
        "timeout = 1",
        f"ca_file = {_q(state.ca_cert)}",
        f"tls_cert = {_q(str(witness_cert))}",
        f"tls_key = {_q(str(witness_key))}",
        "",
        "[api]",
        'listen = "127.0.0.1"',
        f"port = {API_PORT}",
        "",
    ]
    return "\n".join(lines)
