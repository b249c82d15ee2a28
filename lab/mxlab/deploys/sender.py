"""The lab's outside MTA: `pyinfra LAB_INVENTORY mxlab.deploys.sender.apply`.

A plain internet-site Postfix that resolves MX through the lab DNS, so tests can hand it a
message and watch it arrive at the pair as from any remote MTA.
"""

from pathlib import Path

from mxctl_deploys.base import install_packages
from mxctl_deploys.common import InventoryError, template
from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import NoGroupError
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from orchestrator.deploy.spec import is_hostname

SENDER_GROUP = "sender"
LAB_TEMPLATES = Path(__file__).parent.parent / "templates"


@deploy("Sender MTA")
def sender_mta() -> None:
    fqdn = host.data.get("sender_fqdn")
    if not isinstance(fqdn, str) or not is_hostname(fqdn):
        raise InventoryError(f"{host.name}.sender_fqdn: {fqdn!r} is not a host name")
    variables = {
        "fqdn": fqdn,
        "mynetworks": host.data.get("sender_mynetworks") or ["127.0.0.0/8"],
        "log": "/var/log/postfix.log",
        "submission": False,
    }
    install_packages(["postfix", "ca-certificates"])
    main_cf = template(
        "Postfix main.cf",
        "sender/main.cf.j2",
        "/etc/postfix/main.cf",
        variables,
        root=LAB_TEMPLATES,
    )
    master_cf = template(
        "Postfix master.cf", "postfix/master.cf.j2", "/etc/postfix/master.cf", variables
    )
    systemd.service(name="Postfix enabled", service="postfix", running=True, enabled=True)
    systemd.service(name="Postfix running", service="postfix@-", running=True)
    systemd.service(
        name="Reload Postfix",
        service="postfix@-",
        reloaded=True,
        _if=any_changed(main_cf, master_cf),
    )


@deploy("Lab sender")
def apply() -> None:
    try:
        senders = {h.name for h in inventory.get_group(SENDER_GROUP)}
    except NoGroupError:
        senders = set()
    if host.name in senders:
        sender_mta()
