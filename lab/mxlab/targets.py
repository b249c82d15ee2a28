"""Probe settings for the local lab, from its state (lab.json) and the deploy's lab secrets.

Nothing is typed twice: hosts, addresses, SSH access and the CA come from the lab contract,
the probe user and its password file from the lab inventory (mxlab/inventory).
"""

from __future__ import annotations

from mxlab import acmehost
from mxlab import inventory as labinv
from mxlab.state import LabState
from orchestrator.config.secrets import resolve_secret
from orchestrator.deploy import hostfiles
from orchestrator.errors import ProbeError
from orchestrator.probes.settings import (
    CanarySettings,
    MailHostTarget,
    ParitySettings,
    ProbeSettings,
    ProbeUser,
    Timeouts,
)
from orchestrator.remote import SshAccess

# One second is enough on the lab bridge (answers take 1-100 ms) and is what LAB.md's
# detection timings were measured with; the canary gets longer, replication batches.
# Caveat: Dovecot answers a failed login only after auth_failure_delay (2 s), and later
# ones from the same address later still (its auth penalty), so with these timeouts a
# wrong probe password shows as `timeout` at step login/auth, not `auth`: a timeout at
# that step, with the banner and TLS fine, points at credentials, not at a hung host.
LAB_TIMEOUTS = Timeouts(
    smtp=1.0,
    submission=1.0,
    imap=1.0,
    host_state=3.0,
    canary_delivery=10.0,
    canary_replication=10.0,
)


def lab_settings(lab: LabState, timeouts: Timeouts = LAB_TIMEOUTS) -> ProbeSettings:
    mail_hosts = sorted((h for h in lab.hosts.values() if h.role == "mail"), key=lambda h: h.name)
    if len(mail_hosts) != 2:
        raise ProbeError(f"the lab has {len(mail_hosts)} mail hosts; the probes expect two")
    ssh = SshAccess(user=lab.ssh_user, key_file=lab.ssh_key, known_hosts=lab.known_hosts)
    hosts = tuple(
        MailHostTarget(name=h.name, fqdn=h.fqdn, address=h.address, role=role, ssh=ssh)
        for h, role in zip(mail_hosts, ("primary", "standby"), strict=True)
    )
    domain = labinv.PRIMARY_DOMAIN
    password_file = labinv.user_secret_path(labinv.PROBE_USER)
    password = resolve_secret(f"file:{password_file}", "probes.probe_user.password")
    sender = next((h for h in lab.hosts.values() if h.role == "sender"), None)
    sender_domain = sender.fqdn if sender else domain
    nameservers = tuple(h.address for h in lab.nameservers())
    return ProbeSettings(
        hosts=hosts,
        client_name=f"mail.{domain}",
        probe_user=ProbeUser(labinv.PROBE_USER, password),
        # The machine probes from the lab bridge; it has no name of its own in the lab
        # zones, so it presents one under the lab domain (HELO must only be a valid FQDN).
        helo_name=f"probe.{domain}",
        ca_file=acmehost.trust_file(lab) or None,
        timeouts=timeouts,
        canary=CanarySettings(
            domain=domain,
            nameservers=nameservers,
            sender=f"canary@{sender_domain}",
        ),
        parity=ParitySettings(
            domains=tuple(lab.zones),
            dkim_selector=labinv.DKIM_SELECTOR,
            dkim_key_path=f"{hostfiles.DKIM_KEY_DIR}/{labinv.DKIM_SELECTOR}.private",
            nameservers=nameservers,
        ),
    )
