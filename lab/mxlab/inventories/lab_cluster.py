"""The lab's controller cluster: `pyinfra THIS_FILE mxctl_deploys.controller.apply`.

ctl1..ctl3 (added by `mxctl lab controllers up`) each get an etcd member and `mxctl watch`
with a `[cluster]` section naming all three; TLS between members and for clients, with
certificates of the lab CA. The mail pair and sender groups are the same as in lab.py.
"""

from mxlab.controllerhosts import NAMES as _NAMES
from mxlab.controllerinv import cluster_member_data
from mxlab.inventory import build

_lab = build()

mail = (_lab.mail, _lab.mail_data)
sender = _lab.sender
controller = [(name, cluster_member_data(name, list(_NAMES))) for name in _NAMES]
