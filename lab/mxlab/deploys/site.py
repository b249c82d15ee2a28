"""The whole lab in one pyinfra run: `pyinfra LAB_INVENTORY mxlab.deploys.site.apply`.

The mail pair exactly as production deploys it, plus the lab's outside MTA.
"""

from mxctl_deploys import mailpair
from pyinfra.api import deploy

from mxlab.deploys import sender


@deploy("Lab")
def apply() -> None:
    mailpair.apply()
    sender.apply()
