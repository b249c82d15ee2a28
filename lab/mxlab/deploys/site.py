"""The whole lab in one pyinfra run: `pyinfra LAB_INVENTORY mxlab.deploys.site.apply`.

The mail pair exactly as production deploys it, plus the lab's outside MTA and its
off-site backup target.
"""

from mxctl_deploys import mailpair
from pyinfra.api import deploy

from mxlab.deploys import backuphost, sender


@deploy("Lab")
def apply() -> None:
    backuphost.apply()  # first: the pair's first backup may start a minute after its deploy
    mailpair.apply()
    sender.apply()
