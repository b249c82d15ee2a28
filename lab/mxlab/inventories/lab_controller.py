"""The lab with a controller host: `pyinfra THIS_FILE mxctl_deploys.controller.apply`.

Installs the controller on `sender` (the lab's outside host); its config is the lab's
mxctl.toml with paths moved under /etc/mxctl. The mail pair and sender groups are the
same as in lab.py.
"""

from mxlab.controllerinv import controller_data
from mxlab.inventory import build

_lab = build()

mail = (_lab.mail, _lab.mail_data)
sender = _lab.sender
controller = [(name, {**data, **controller_data()}) for name, data in _lab.sender]
