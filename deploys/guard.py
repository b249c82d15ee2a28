"""Self-fence guard unit: mxctl-guard on each mail host (see orchestrator/hostguard).

The guard is orchestrator/hostguard copied file by file as the package `mxctl_hostguard`
and run by Debian's python3 with python3-dnspython: the same tested code, without a venv
of mxctl's dependencies on every mail host. A change of code, settings or unit restarts
it; a second run changes nothing.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from mxctl_deploys.common import mail_pair, template
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

import orchestrator.hostguard
from orchestrator.deploy.hostfirewall import guard_settings
from orchestrator.hostguard import install

SOURCE = Path(orchestrator.hostguard.__file__).resolve().parent


@deploy("Self-fence guard")
def guard() -> None:
    code = [
        files.put(
            name=f"guard {path.name}",
            src=str(path),
            dest=f"{install.LIB_DIR}/{install.PACKAGE}/{path.name}",
            user="root",
            group="root",
            mode="644",
        )
        for path in sorted(SOURCE.glob("*.py"))
    ]
    settings = files.put(
        name="guard settings",
        src=StringIO(guard_settings(mail_pair(), host.name)),
        dest=install.CONFIG,
        user="root",
        group="root",
        mode="644",
    )
    unit = template(
        "mxctl-guard unit",
        "guard/mxctl-guard.service.j2",
        f"/etc/systemd/system/{install.UNIT}",
        {
            "lib_dir": install.LIB_DIR,
            "package": install.PACKAGE,
            "config": install.CONFIG,
            "firewall_unit": install.FIREWALL_UNIT,
        },
    )
    systemd.daemon_reload(name="systemd daemon-reload (guard)", _if=unit.did_change)
    started = systemd.service(
        name="mxctl-guard running", service=install.UNIT, running=True, enabled=True
    )
    systemd.service(
        name="Restart mxctl-guard",
        service=install.UNIT,
        restarted=True,
        _if=lambda: any_changed(*code, settings, unit)() and not started.did_change(),
    )
