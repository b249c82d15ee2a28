"""Inventory data for installing the controller on a lab host (mxctl_deploys.controller).

The lab's mxctl.toml names files on this machine (keys, known_hosts, the CA, secrets);
on the controller host they live under /etc/mxctl. The config is rewritten to the remote
paths and every referenced file is listed for upload (0600 for secrets), so the installed
controller is the same controller, reading the same facts.
"""

from __future__ import annotations

from typing import Any

from mxlab import acmehost
from mxlab.state import LabState, load_lab_state, state_dir
from mxlab.wheels import build_wheels

REMOTE_DIR = "/etc/mxctl"
REMOTE_STATE = "/var/lib/mxctl"


def _remote_files(lab: LabState) -> dict[str, str]:
    """Local path -> remote path for every file the lab config references."""
    secrets = state_dir() / "secrets"
    files = {
        lab.tsig_secret_file: f"{REMOTE_DIR}/secrets/tsig.key",
        lab.ssh_key: f"{REMOTE_DIR}/secrets/id_ed25519",
        lab.known_hosts: f"{REMOTE_DIR}/known_hosts",
        lab.ca_cert: f"{REMOTE_DIR}/ca.pem",
    }
    if acmehost.trust_file(lab) != lab.ca_cert:  # the lab CA and the ACME root, for probes
        files[acmehost.trust_file(lab)] = f"{REMOTE_DIR}/trust.pem"
    for path in sorted(secrets.glob("*")):
        if path.name.startswith(("mail-user-probe", "witness-")):
            files[str(path)] = f"{REMOTE_DIR}/secrets/{path.name}"
    return files


def controller_data(lab: LabState | None = None, api_listen: str = "127.0.0.1") -> dict[str, Any]:
    lab = lab or load_lab_state()
    files = _remote_files(lab)
    config = (state_dir() / "mxctl.toml").read_text()
    for local, remote in files.items():
        config = config.replace(local, remote)
    config = config.replace(str(state_dir() / "controller"), REMOTE_STATE)
    config = config.replace('listen = "127.0.0.1"', f'listen = "{api_listen}"')
    rendered = state_dir() / "controller-host.toml"
    rendered.write_text(config)
    rendered.chmod(0o600)
    wheels = build_wheels(state_dir().parent / "mxctl-wheels")
    return {
        "controller_config": str(rendered),
        "controller_files": files,
        "controller_wheels": str(wheels),
    }
