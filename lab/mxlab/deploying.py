"""Where the lab's inventories and deploys are, for the demo, the tests and the benches.

The lab deploys the mail pair exactly as production does (mxctl_deploys.mailpair), plus its
outside MTA, in one pyinfra run.
"""

from __future__ import annotations

from pathlib import Path

INVENTORIES = Path(__file__).parent / "inventories"
LAB_INVENTORY = str(INVENTORIES / "lab.py")
LAB_CONTROLLER_INVENTORY = str(INVENTORIES / "lab_controller.py")
LAB_CLUSTER_INVENTORY = str(INVENTORIES / "lab_cluster.py")  # ctl1..ctl3: etcd + controller
LAB_DEPLOY = "mxlab.deploys.site.apply"
SENDER_DEPLOY = "mxlab.deploys.sender.apply"
