"""An etcd member of the controller cluster (Debian's etcd-server), TLS everywhere.

Called by mxctl_deploys.controller for a controller host whose inventory data has
`etcd_member`. Data (the same `etcd_cluster` and `etcd_token` on every member):

    etcd_member = "ctl1"                       # this member's name
    etcd_address = "10.0.0.5"                  # where it listens (clients 2379, peers 2380)
    etcd_cluster = {"ctl1": "10.0.0.5", ...}   # every member: name -> address
    etcd_token = "mail-prod"                   # the cluster's initial token
    etcd_tls = {"ca": LOCAL, "cert": LOCAL, "key": LOCAL}  # the member's files here

The member's certificate serves clients and peers and must allow both serverAuth and
clientAuth (peers authenticate each other with it, and etcd 3.4's JSON gateway dials the
member's own gRPC port with it). A change of config or certificate restarts etcd; a second
run changes nothing.
"""

from __future__ import annotations

import re

from mxctl_deploys.base import install_packages
from mxctl_deploys.common import InventoryError, template
from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

TLS_DIR = "/etc/etcd/mxctl"
DEFAULTS = "/etc/default/etcd"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _member_data() -> tuple[str, str, dict[str, str], str, dict[str, str]]:
    name = str(host.data.get("etcd_member") or "")
    address = str(host.data.get("etcd_address") or "")
    cluster = host.data.get("etcd_cluster")
    token = str(host.data.get("etcd_token") or "")
    tls = host.data.get("etcd_tls")
    where = f"{host.name}.etcd_"
    if not NAME.match(name):
        raise InventoryError(f"{where}member: {name!r}; give the member a name (letters, digits)")
    if not isinstance(cluster, dict) or cluster.get(name) != address or not address:
        raise InventoryError(
            f"{where}cluster: must map every member's name to its address, this one "
            f"({name}) to {where}address ({address or 'missing'})"
        )
    if not NAME.match(token):
        raise InventoryError(f"{where}token: {token!r}; use the cluster's name")
    if not isinstance(tls, dict) or sorted(tls) != ["ca", "cert", "key"]:
        raise InventoryError(f"{where}tls: must map ca, cert and key to files on this machine")
    return name, address, {str(k): str(v) for k, v in cluster.items()}, token, tls


def apply_member() -> None:
    name, address, cluster, token, tls = _member_data()
    install_packages(["etcd-server"])
    files.directory(name=TLS_DIR, path=TLS_DIR, user="etcd", group="etcd", mode="700")
    uploads: list[OperationMeta] = [
        files.put(
            name=f"etcd {dest}",
            src=tls[key],
            dest=f"{TLS_DIR}/{dest}",
            user="etcd",
            group="etcd",
            mode="600",
        )
        for key, dest in (("ca", "ca.pem"), ("cert", "member.pem"), ("key", "member.key"))
    ]
    defaults = template(
        "etcd member config",
        "etcd/etcd.default.j2",
        DEFAULTS,
        {
            "member": name,
            "address": address,
            "data_dir": f"/var/lib/etcd/{token}",
            "initial_cluster": ",".join(
                f"{member}=https://{peer}:2380" for member, peer in sorted(cluster.items())
            ),
            "token": token,
            "tls_dir": TLS_DIR,
        },
    )
    # A change restarts the member (or starts it the first time, on every member at once:
    # pyinfra runs an operation on all hosts before the next, and a new member's start
    # waits until a majority has started too).
    systemd.service(
        name="Restart etcd",
        service="etcd",
        restarted=True,
        _if=any_changed(defaults, *uploads),
    )
    systemd.service(name="etcd enabled", service="etcd", enabled=True, running=True)
