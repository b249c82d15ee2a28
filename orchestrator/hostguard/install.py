"""Where the guard lives on a mail host; shared by the deploy and the controller's unfence."""

PACKAGE = "mxctl_hostguard"  # this package, under its installed name
LIB_DIR = "/usr/local/lib/mxctl-guard"  # PYTHONPATH: LIB_DIR/PACKAGE/*.py
CONFIG = "/etc/mxctl/guard.json"
CLOSED_RULES = "/etc/mxctl/guard-closed.nft"  # loaded at boot, before the network
FIREWALL_RULES = "/etc/mxctl/firewall.nft"  # replication port: the peer only
ROLE_FILE = "/var/lib/mxctl/guard-role"
STATUS_FILE = "/run/mxctl-guard/status.json"
LOCK = "/run/mxctl-guard.lock"  # held by a guard round; unfence takes it too
TABLE = "mxctl_guard"
PEER_TABLE = "mxctl_peer"
UNIT = "mxctl-guard.service"
FIREWALL_UNIT = "mxctl-firewall.service"
ONCE = f"PYTHONPATH={LIB_DIR} python3 -m {PACKAGE} --once --config {CONFIG}"
