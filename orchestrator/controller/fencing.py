"""Fence a mail host: it stops serving mail clients but keeps replicating.

Fencing rejects (TCP reset) SMTP, submission, IMAP and POP on the host with an nftables
table of its own, and leaves the doveadm replication port open: mail the old primary
accepted before it failed still flows to the new primary once it is back. A marker file
and a oneshot unit keep the fence across a reboot (the unit loads the table before
Postfix and Dovecot start), so a recovered old primary never serves as primary again
until a switchback unfences it. Rejecting with a reset rather than dropping makes remote
MTAs move on (or retry later) at once instead of timing out; nothing bounces.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from orchestrator.remote import RemoteError, SshTarget, run_remote

CLIENT_PORTS = (25, 465, 587, 110, 143, 993, 995)
FENCE_TABLE = "mxctl_fence"
MARKER = "/etc/mxctl/fenced"
RULES_FILE = "/etc/mxctl/fence.nft"
UNIT = "mxctl-fence.service"

_RULES = f"""table inet {FENCE_TABLE}
delete table inet {FENCE_TABLE}
table inet {FENCE_TABLE} {{
    chain input {{
        type filter hook input priority -10;
        tcp dport {{ {", ".join(map(str, CLIENT_PORTS))} }} reject with tcp reset
    }}
}}
"""

_UNIT_TEXT = f"""[Unit]
Description=mxctl fence: this host must not serve mail clients (see {MARKER})
ConditionPathExists={MARKER}
DefaultDependencies=no
Before=postfix.service dovecot.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f {RULES_FILE}

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class FenceResult:
    host: str
    fenced: bool
    detail: str


def fence_script(reason: str) -> str:
    return "\n".join(
        [
            "set -e",
            "mkdir -p /etc/mxctl",
            f"cat > {RULES_FILE} <<'MXCTL_EOF'\n{_RULES}MXCTL_EOF",
            f"cat > /etc/systemd/system/{UNIT} <<'MXCTL_EOF'\n{_UNIT_TEXT}MXCTL_EOF",
            f"printf '%s\\n' {shlex.quote(reason)} > {MARKER}",
            f"nft -f {RULES_FILE}",
            f"systemctl daemon-reload && systemctl enable --quiet {UNIT} || true",
            f"nft list table inet {FENCE_TABLE} >/dev/null && echo fenced",
        ]
    )


def unfence_script() -> str:
    return "\n".join(
        [
            "set -e",
            f"rm -f {MARKER}",
            f"systemctl disable --quiet {UNIT} 2>/dev/null || true",
            f"nft delete table inet {FENCE_TABLE} 2>/dev/null || true",
            "echo unfenced",
        ]
    )


def fence(target: SshTarget, reason: str, timeout: float = 10.0) -> FenceResult:
    """Fence a host over SSH. An unreachable host is reported, not raised: the caller
    decides whether DNS alone may fence it (it cannot be fenced while it is down)."""
    try:
        result = run_remote(target, fence_script(reason), timeout)
    except RemoteError as exc:
        if exc.kind in ("unreachable", "timeout"):
            return FenceResult(target.name, False, f"unreachable ({exc.detail})")
        raise
    if result.exit_code != 0 or "fenced" not in result.stdout:
        raise RemoteError(target.name, "fence", result.stderr.strip() or "fence script failed")
    return FenceResult(target.name, True, "client ports reject; replication port open")


def unfence(target: SshTarget, timeout: float = 10.0) -> None:
    result = run_remote(target, unfence_script(), timeout)
    if result.exit_code != 0:
        raise RemoteError(target.name, "unfence", result.stderr.strip() or "unfence failed")


def is_fenced(target: SshTarget, timeout: float = 10.0) -> bool:
    result = run_remote(target, f"test -e {MARKER} && nft list table inet {FENCE_TABLE}", timeout)
    return result.exit_code == 0
