"""Install the mxctl controller on a host: `pyinfra INVENTORY mxctl_deploys.controller.apply`.

Targets the `controller` group. mxctl is installed into a venv from wheels built on the
deploying machine (no package index needed on the host), with its config and the files
the config references, and runs as the `mxctl-watch` systemd service. A change of code,
config or unit restarts the service; a second run changes nothing.
"""

import tomllib

from mxctl_deploys import etcd
from mxctl_deploys.base import install_packages
from mxctl_deploys.common import InventoryError, template
from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import NoGroupError
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, pip, server, systemd
from pyinfra.operations.util import any_changed

CONTROLLER_GROUP = "controller"
VENV = "/opt/mxctl/venv"
WHEELS = "/opt/mxctl/wheels"
CONFIG = "/etc/mxctl/mxctl.toml"


def wants_cert_renewal(config_path: str) -> bool:
    """The controller renews certificates (a timer) when its config has `[certs]`."""
    with open(config_path, "rb") as handle:
        return "certs" in tomllib.load(handle)


def _cert_renewal_units(config: str) -> list[OperationMeta]:
    if not wants_cert_renewal(config):
        return []
    variables = {"venv": VENV, "config": CONFIG}
    service = template(
        "mxctl-cert-renew service",
        "controller/mxctl-cert-renew.service.j2",
        "/etc/systemd/system/mxctl-cert-renew.service",
        variables,
    )
    timer = template(
        "mxctl-cert-renew timer",
        "controller/mxctl-cert-renew.timer.j2",
        "/etc/systemd/system/mxctl-cert-renew.timer",
        variables,
    )
    return [service, timer]


def _data(key: str) -> object:
    value = host.data.get(key)
    if not value:
        raise InventoryError(f"{host.name}.{key}: missing (see mxlab/controllerinv.py for the lab)")
    return value


@deploy("mxctl controller")
def apply() -> None:
    try:
        controllers = {h.name for h in inventory.get_group(CONTROLLER_GROUP)}
    except NoGroupError:
        controllers = set()
    if host.name in controllers:
        if host.data.get("etcd_member"):
            etcd.apply_member()  # before the controller, which needs its cluster
        _controller()


def _controller() -> None:
    wheels = str(_data("controller_wheels"))
    config = str(_data("controller_config"))
    uploads = _data("controller_files")
    if not isinstance(uploads, dict):
        raise InventoryError(f"{host.name}.controller_files: must map local to remote paths")
    install_packages(["python3-venv"])
    synced = files.sync(name="mxctl wheels", src=wheels, dest=WHEELS, delete=True)
    pip.virtualenv(name="mxctl venv", path=VENV, venv=True, python="python3")
    installed = pip.packages(
        name="mxctl from the wheels",
        packages=["mxctl"],
        virtualenv=VENV,
        extra_install_args=f"--no-index --find-links {WHEELS}",
    )
    # The version stays 0.1.0 while the code changes: new wheels mean a reinstall.
    reinstalled = server.shell(
        name="mxctl reinstalled from new wheels",
        commands=[
            f"{VENV}/bin/pip install --quiet --force-reinstall --no-deps --no-index "
            f"--find-links {WHEELS} mxctl"
        ],
        _if=synced.did_change,
    )
    files.directory(name="/etc/mxctl", path="/etc/mxctl", mode="700")
    files.directory(name="/etc/mxctl/secrets", path="/etc/mxctl/secrets", mode="700")
    put = [
        files.put(name=f"file {remote}", src=local, dest=remote, mode="600")
        for local, remote in sorted(uploads.items())
    ]
    conf = files.put(name="mxctl.toml", src=config, dest=CONFIG, mode="600")
    unit = template(
        "mxctl-watch unit",
        "controller/mxctl-watch.service.j2",
        "/etc/systemd/system/mxctl-watch.service",
        {"venv": VENV, "config": CONFIG},
    )
    timer_units = _cert_renewal_units(config)
    systemd.daemon_reload(name="systemd daemon-reload", _if=any_changed(unit, *timer_units))
    systemd.service(name="mxctl-watch enabled", service="mxctl-watch", enabled=True, running=True)
    if timer_units:
        systemd.service(
            name="mxctl-cert-renew timer enabled",
            service="mxctl-cert-renew.timer",
            enabled=True,
            running=True,
        )
    systemd.service(
        name="Restart mxctl-watch",
        service="mxctl-watch",
        restarted=True,
        _if=any_changed(installed, reinstalled, conf, unit, *put),
    )
