"""Defaults for every inventory (group `all`, the lowest precedence): an inventory's group
or host data overrides any of them, and so does `pyinfra --data key=value`.

Changing one of these and re-running the deploy reloads only the service it belongs to.
(Not group_data/mail.py: pyinfra lets group_data files override the data an inventory gives
its groups, so defaults there could not be overridden by the inventory.)
"""

# TCP port of the doveadm server the two replicators use (open it between the hosts only).
mail_replication_port = 12345

# Postfix: largest message accepted, in bytes (50 MiB).
postfix_message_size_limit = 52428800

# Dovecot: concurrent IMAP connections per user and client address.
dovecot_mail_max_userip_connections = 20

# Self-fence guard on each mail host (orchestrator/hostguard): seconds between its DNS
# rounds, how long an opening holds without a new confirmation (keep it shorter than the
# controller's failure_threshold x interval), and the timeout of one DNS query.
mail_guard_interval = 1
mail_guard_lease = 3
mail_guard_timeout = 0.5
