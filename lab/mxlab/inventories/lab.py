"""Inventory of the local lab: `pyinfra THIS_FILE mxlab.deploys.site.apply`.

Everything comes from the running lab (/var/lib/mxctl-lab/lab.json): mx1 is the primary,
mx2 the standby, `sender` the outside MTA. Lab secrets (user passwords, the doveadm password,
the DKIM key) and host certificates signed by the lab CA are created on first use under the
lab state directory and reused afterwards. Defaults: orchestrator/deploy/spec.py (DEFAULTS).
"""

from mxlab.inventory import build

_lab = build()

mail = (_lab.mail, _lab.mail_data)
sender = _lab.sender
backup = _lab.backup
