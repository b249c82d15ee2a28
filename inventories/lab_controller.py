"""The lab with a controller host: `pyinfra inventories/lab_controller.py deploys/controller.py`.

Installs the controller on `sender` (the lab's outside host); its config is the lab's
mxctl.toml with paths moved under /etc/mxctl. The mail pair and sender groups are the
same as in inventories/lab.py.
"""

from orchestrator.deploy.controllerinv import controller_data
from orchestrator.deploy.labinv import build

_lab = build()

mail = (_lab.mail, _lab.mail_data)
sender = _lab.sender
controller = [(name, {**data, **controller_data()}) for name, data in _lab.sender]
