"""mxctl-backup: the agent the deploy installs on both mail hosts (stdlib + dnspython only).

It runs on the host, as root, from the systemd timer (`mxctl-backup run`) and for the
operator's `mxctl backup ...` commands (over SSH), and prints JSON. Relative imports only:
the deploy uploads this package alone, not the rest of mxctl.
"""
