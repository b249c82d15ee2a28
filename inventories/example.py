"""A production inventory, documented: copy it, change the names, keep the shape.

    pyinfra inventories/example.py mxctl_deploys.mailpair.apply   # or: mxctl deploy -i ...

Two hosts by name; `mail_role` says which one is primary (in MX) and which is standby (an
identical host kept in sync by Dovecot replication, ready to take over). Secrets are never
written here: each is a reference, `env:NAME` (an environment variable of the deploying
shell) or `file:/path` (a file readable by its owner only, mode 0600), resolved on the
deploying machine. User passwords are hashed (ARGON2ID) before they reach a host.
Tunables (ports, size limits) have defaults (orchestrator/deploy/spec.py, DEFAULTS): set
them here to override.
"""

# The group must be called `mail` and hold exactly two hosts.
mail = (
    [
        (
            "mx1.example.com",  # how pyinfra reaches the host (ssh_hostname defaults to it)
            {
                "mail_role": "primary",
                # The name the host announces (SMTP banner, HELO); defaults to the host name.
                "mail_fqdn": "mx1.example.com",
                # The addresses the host owns (its A/AAAA records, the source of its
                # replication connections): the peer alone may reach the replication port.
                "mail_addresses": ["192.0.2.25"],
                # Certificate (full chain) and key on the deploying machine, valid for the
                # host's own name AND mail_client_name, so clients notice no failover.
                "mail_tls_cert": "/etc/mxctl/tls/mx1.example.com/fullchain.pem",
                "mail_tls_key": "/etc/mxctl/tls/mx1.example.com/privkey.pem",
            },
        ),
        (
            "mx2.example.com",
            {
                "mail_role": "standby",
                "mail_fqdn": "mx2.example.com",
                # The addresses the host owns (its A/AAAA records, the source of its
                # replication connections): the peer alone may reach the replication port.
                "mail_addresses": ["198.51.100.25"],
                "mail_tls_cert": "/etc/mxctl/tls/mx2.example.com/fullchain.pem",
                "mail_tls_key": "/etc/mxctl/tls/mx2.example.com/privkey.pem",
            },
        ),
    ],
    {
        # Shared by both hosts.
        "ssh_user": "root",
        "ssh_strict_host_key_checking": "yes",
        "mail_domains": ["example.com", "example.org"],
        # The name clients configure for IMAP and submission; DNS points it at the primary.
        "mail_client_name": "mail.example.com",
        "mail_users": [
            {"address": "alice@example.com", "password": "env:MXCTL_PASSWORD_ALICE"},
            {"address": "bob@example.org", "password": "file:/etc/mxctl/secrets/bob"},
        ],
        # A dedicated user for health probes and canary messages: never a real person.
        "mail_probe_user": {
            "address": "probe@example.com",
            "password": "file:/etc/mxctl/secrets/probe",
        },
        # alias -> mailbox
        "mail_aliases": {
            "postmaster@example.com": "alice@example.com",
            "postmaster@example.org": "alice@example.com",
        },
        # Authenticates the doveadm channel the two replicators talk over (16+ characters).
        # The channel is TLS with each host's certificate; the peer's name is verified
        # against the system trust store, or against this CA bundle when set (for
        # certificates from a private CA):
        # "mail_tls_ca": "/etc/mxctl/tls/private-ca.pem",
        "mail_replication_password": "file:/etc/mxctl/secrets/doveadm",
        # One DKIM key for both hosts; the deploy prints the TXT record to publish at
        # <selector>._domainkey.<domain>.
        "mail_dkim_selector": "mail2026",
        "mail_dkim_key": "file:/etc/mxctl/secrets/dkim.key",
        # The authoritative nameservers of the mail domains, by address. Each host's guard
        # (mxctl-guard) asks them every second where the MX and mail_client_name point and
        # closes its client ports when they name the other host after a failover.
        "mail_nameservers": ["203.0.113.53", "203.0.113.54"],
        # Backups (restic): every mailbox plus what rebuilds a host, from the current
        # primary, encrypted and incremental, to a target that is not one of the pair.
        # Leave it out for no backups. Targets: "sftp:USER@HOST:/path", "/local/path",
        # "s3:https://HOST/BUCKET/path" (then s3_access_key_id / s3_secret_access_key).
        "mail_backup": {
            "target": "sftp:mxbackup@backup.example.net:/repo",
            "password": "file:/etc/mxctl/secrets/restic",  # keep a copy off the pair!
            "ssh_key": "file:/etc/mxctl/secrets/backup-ssh-key",
            "ssh_known_hosts": (
                "backup.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedHostKeyOfTheTarget"
            ),
            "interval": "1h",  # the RPO; 5/10/15/20/30min or 1/2/3/4/6/8/12/24h, on the clock
            "max_age": "3h",  # alert when the last good backup is older
            "keep": {"last": 3, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 12},
            # restore drill on the primary: a sample of mailboxes compared with the live store
            "drill": {"calendar": "Sun *-*-* 04:30:00", "sample": 5},
        },
    },
)
