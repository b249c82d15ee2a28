"""mxctl-dsync: two-way mailbox replication for Dovecot 2.4, which has no replicator.

This package runs ON THE MAIL HOSTS (Debian 13's python3, standard library only): the deploy
copies it there as the package `mxctl_dsync` and starts it as the `mxctl-dsync` systemd
service. Its modules import each other relatively and nothing else from mxctl.

- guard: the decisions, pure and table-tested (which events mean a mailbox changed, whether
  a user may be synced, retry backoff, the state report in the replicator's format);
- service: the daemon (event listener, sync workers, periodic sweep, state file) and the
  `mxctl-dsync` command line (status, sync).
"""
