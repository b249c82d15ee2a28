"""Host firewall unit: the replication port for the peer only, the fence ready to use.

Loaded at boot by mxctl-firewall.service, before the network and before Dovecot; a
changed rule file is loaded at once (only its own table is replaced). The fence's rule
file and boot unit are installed too, so the host's guard can fence itself exactly as the
controller fences it (the unit does nothing until the fence marker exists).
"""

from __future__ import annotations

from io import StringIO

from mxctl_deploys.common import mail_pair, template
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from orchestrator.controller import fencing
from orchestrator.deploy.hostfirewall import firewall_rules, guard_closed_rules
from orchestrator.hostguard import install


def _put(name: str, content: str, dest: str) -> OperationMeta:
    return files.put(
        name=name, src=StringIO(content), dest=dest, user="root", group="root", mode="644"
    )


@deploy("Host firewall")
def peer_only() -> list[OperationMeta]:
    """Returns the operations whose change needs systemd to reload its units."""
    files.directory(name="/etc/mxctl", path="/etc/mxctl")
    rules = _put(
        "Replication port for the peer only",
        firewall_rules(mail_pair(), host.name),
        install.FIREWALL_RULES,
    )
    _put("Guard: client ports closed at boot", guard_closed_rules(), install.CLOSED_RULES)
    _put("Fence rules", fencing.FENCE_RULES, fencing.RULES_FILE)
    units = [
        _put("Fence unit", fencing.FENCE_UNIT_TEXT, f"/etc/systemd/system/{fencing.UNIT}"),
        template(
            "mxctl-firewall unit",
            "guard/mxctl-firewall.service.j2",
            f"/etc/systemd/system/{install.FIREWALL_UNIT}",
            {
                "firewall_rules": install.FIREWALL_RULES,
                "closed_rules": install.CLOSED_RULES,
                "guard_unit": install.UNIT,
            },
        ),
    ]
    systemd.daemon_reload(name="systemd daemon-reload (firewall)", _if=any_changed(*units))
    systemd.service(
        name="mxctl-firewall enabled", service=install.FIREWALL_UNIT, running=True, enabled=True
    )
    # Only the peer table is replaced: reloading the unit would close the client ports too.
    server.shell(
        name="Load the changed replication rules",
        commands=[f"nft -f {install.FIREWALL_RULES}"],
        _if=rules.did_change,
    )
    return units
