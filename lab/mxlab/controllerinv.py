"""Inventory data for installing the controller on a lab host (mxctl_deploys.controller).

The lab's mxctl.toml names files on this machine (keys, known_hosts, the CA, secrets);
on the controller host they live under /etc/mxctl. The config is rewritten to the remote
paths and every referenced file is listed for upload (0600 for secrets), so the installed
controller is the same controller, reading the same facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mxlab import acmehost
from mxlab.inventory import ssh_data
from mxlab.state import LabState, load_lab_state, state_dir
from mxlab.wheels import build_wheels
from orchestrator.deploy.tlscerts import issue_lab_cert

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
    wheels = build_wheels(state_dir().parent / "mxctl-lab-wheels")
    return {
        "controller_config": str(rendered),
        "controller_files": files,
        "controller_wheels": str(wheels),
    }


# The controller cluster's lease in the lab: a leader gone is replaced within about
# LEASE_TTL + one [policy] interval (1 s); the margin is the config's default (TTL / 5).
# At least 2 x interval + margin (orchestrator/config/cycle.py): a cycle's reads end at
# its deadline on the fixed clock, so no cycle outlasts its interval.
LEASE_TTL = 4
ETCD_REMOTE = f"{REMOTE_DIR}/etcd"


def cluster_member_data(
    name: str, members: list[str], lab: LabState | None = None
) -> dict[str, Any]:
    """One controller host of the cluster: an etcd member and `mxctl watch` whose config is
    the lab's plus `[cluster]`, its API on its own address (read-only: no token, so the
    tests on the machine can read `/status`; plain HTTP, lab only)."""
    lab = lab or load_lab_state()
    me = lab.host(name)
    data = controller_data(lab, api_listen=me.address)
    tls_dir = state_dir() / "etcd-tls"
    # One certificate per host (serverAuth + clientAuth, for its address): the etcd
    # member's for clients and peers, and the controller's client certificate.
    cert, key = issue_lab_cert(Path(lab.ca_cert), Path(lab.ca_key), (me.address, me.fqdn), tls_dir)
    endpoints = ", ".join(f'"https://{lab.host(m).address}:2379"' for m in members)
    cluster = "\n".join(
        [
            "",
            "[cluster]",
            f'name = "{lab.name}"',
            f'member = "{name}"',
            "members = [" + ", ".join(f'"{m}"' for m in members) + "]",
            f"endpoints = [{endpoints}]",
            f'ca = "{REMOTE_DIR}/ca.pem"',  # the lab CA signed the members' certificates
            f'cert = "{ETCD_REMOTE}/client.pem"',
            f'key = "{ETCD_REMOTE}/client.key"',
            f"lease_ttl = {LEASE_TTL}",
            "",
        ]
    )
    config = Path(data["controller_config"]).read_text()
    config = config.replace("[api]\n", "[api]\nallow_insecure_http = true\n") + cluster
    rendered = state_dir() / f"controller-{name}.toml"
    rendered.write_text(config)
    rendered.chmod(0o600)
    files = dict(data["controller_files"])
    files[str(cert)] = f"{ETCD_REMOTE}/client.pem"
    files[str(key)] = f"{ETCD_REMOTE}/client.key"
    return {
        **ssh_data(lab, me.address),
        **data,
        "controller_config": str(rendered),
        "controller_files": files,
        "etcd_member": name,
        "etcd_address": me.address,
        "etcd_cluster": {m: lab.host(m).address for m in members},
        "etcd_token": lab.name,
        "etcd_tls": {"ca": lab.ca_cert, "cert": str(cert), "key": str(key)},
    }
