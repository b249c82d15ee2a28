"""TLS unit: the host's certificate (its own name + the client-facing name) and key."""

from __future__ import annotations

import io

from mxctl_deploys.common import mail_pair
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files

from orchestrator.deploy.hostfiles import (
    TLS_CERT,
    TLS_CHAIN,
    TLS_DIR,
    TLS_KEY,
    TLS_PEER_CA,
    key_and_chain,
)


@deploy("TLS")
def certificates() -> list[OperationMeta]:
    """Upload the certificate and key; returns the operations whose change needs a reload."""
    me = mail_pair().host(host.name)
    files.directory(name="TLS directory", path=TLS_DIR, user="root", group="root", mode="755")
    cert = files.put(
        name="Host certificate",
        src=str(me.tls_cert),
        dest=TLS_CERT,
        user="root",
        group="root",
        mode="644",
        create_remote_dir=False,
    )
    key = files.put(
        name="Host private key",
        src=str(me.tls_key),
        dest=TLS_KEY,
        user="root",
        group="root",
        mode="600",
        create_remote_dir=False,
    )
    chain = files.put(
        name="Host key and chain in one file (Postfix)",
        src=io.BytesIO(key_and_chain(me.tls_key.read_bytes(), me.tls_cert.read_bytes())),
        dest=TLS_CHAIN,
        user="root",
        group="root",
        mode="600",
        create_remote_dir=False,
    )
    return [cert, key, chain]


@deploy("TLS peer CA")
def peer_ca() -> list[OperationMeta]:
    """The CA bundle the hosts verify each other's certificate with on the replication
    channel, when the inventory names one (otherwise the system's trust store is used)."""
    ca = mail_pair().tls_ca
    if ca is None:
        return []
    return [
        files.put(
            name="CA the hosts verify each other with",
            src=str(ca),
            dest=TLS_PEER_CA,
            user="root",
            group="root",
            mode="644",
            create_remote_dir=False,
        )
    ]
