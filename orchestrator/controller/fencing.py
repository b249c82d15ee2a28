"""Fence a mail host: it stops serving mail clients but keeps replicating.

Fencing rejects (TCP reset) SMTP, submission, IMAP and POP on the host with an nftables
table of its own, and leaves the doveadm replication port open to the peer: mail the old
primary accepted before it failed still flows to the new primary once it is back. The
replication port is restricted to the peer's addresses by the deploy's own table
(`mxctl_peer`, see orchestrator/deploy/hostfirewall.py), which fencing never touches, so
it stays peer-only fenced or not; the fence reports whether that table is loaded. A
host's own guard (orchestrator/hostguard) fences itself with the same marker, table and
unit when it finds DNS moved away while it was frozen, down or cut off. A marker file
and a oneshot unit keep the fence across a reboot (the unit loads the table before
Postfix and Dovecot start), so a recovered old primary never serves as primary again
until a switchback unfences it. Rejecting with a reset rather than dropping makes remote
MTAs move on (or retry later) at once instead of timing out; nothing bounces.

A host that answers SSH but where the fence script fails (a read-only or full /etc, no
processes left to fork, an nft error) raises FenceFailed, saying whether a guard runs
there and how long its lease is: a failover may then take the host as fenced once that
lease has passed (Pacemaker's watchdog fencing), since only a confirmation from DNS
renews the guard's opening. Both the fence script and the fence-state check the
controller runs every cycle copy the guard's settings to their output first, with shell
builtins only (no file written, no process started); this module remembers the last
settings each host showed, so a host whose shell cannot start at all any more (out of
processes) is judged on what its guard said when it last could.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from orchestrator.hostguard import install as guard
from orchestrator.hostguard.settings import SettingsError, parse_settings
from orchestrator.remote import RemoteError, SshTarget, run_remote

CLIENT_PORTS = (25, 465, 587, 110, 143, 993, 995)
FENCE_TABLE = "mxctl_fence"
MARKER = "/etc/mxctl/fenced"
RULES_FILE = "/etc/mxctl/fence.nft"
UNIT = "mxctl-fence.service"
PEER_ONLY = "replication-peer-only"
GUARD_LINE = "guard-settings: "  # prefixes each line of the guard's settings in the output
NO_GUARD = "guard-settings-absent"  # the line printed instead when there are none

FENCE_RULES = f"""table inet {FENCE_TABLE}
delete table inet {FENCE_TABLE}
table inet {FENCE_TABLE} {{
    chain input {{
        type filter hook input priority -10;
        tcp dport {{ {", ".join(map(str, CLIENT_PORTS))} }} reject with tcp reset
    }}
}}
"""

FENCE_UNIT_TEXT = f"""[Unit]
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


@dataclass(frozen=True)
class GuardLease:
    """The guard's timing on a host, as its settings (rendered by the deploy) say."""

    lease: float
    interval: float

    @property
    def wait(self) -> float:
        """How long after now every opening the guard granted has lapsed, unless DNS
        confirmed the host again meanwhile: the lease of a round that started before now,
        one interval for a round in flight, a second for nft's whole-second deadline."""
        return self.lease + self.interval + 1.0


class FenceFailed(RemoteError):
    """The fence script ran on the host and failed; `guard` is None when the host has no
    guard (or its settings could not be read), `guard_problem` then says why."""

    def __init__(
        self, host: str, detail: str, guard: GuardLease | None, guard_problem: str
    ) -> None:
        super().__init__(host, "fence", detail)
        self.guard, self.guard_problem = guard, guard_problem


# host -> the guard it showed the last time a fence or a fence-state check ran there
# (None: it had none). Filled by every cycle's check; read when a fence fails.
_GUARDS_SEEN: dict[str, GuardLease | None] = {}


def _read_guard_lines() -> str:
    """Shell builtins only (`[`, `read`, `printf`): this works where nothing else can."""
    return (
        f'if [ -r {guard.CONFIG} ]; then while IFS= read -r line || [ -n "$line" ]; '
        f"do printf '{GUARD_LINE}%s\\n' \"$line\"; done < {guard.CONFIG}; "
        f"else printf '%s\\n' {NO_GUARD}; fi"
    )


def _shell_ran(stdout: str) -> bool:
    return GUARD_LINE in stdout or NO_GUARD in stdout.splitlines()


def _remember_guard(host: str, stdout: str) -> None:
    if _shell_ran(stdout):
        _GUARDS_SEEN[host] = guard_lease(stdout)[0]


def guard_lease(stdout: str) -> tuple[GuardLease | None, str]:
    """The guard's lease from a fence or fence-state output, or None and why not."""
    lines = [line[len(GUARD_LINE) :] for line in stdout.splitlines() if line.startswith(GUARD_LINE)]
    if not lines:
        return None, f"no guard on the host ({guard.CONFIG} absent or unreadable)"
    try:
        settings = parse_settings(json.loads("\n".join(lines)))
    except ValueError as exc:
        return None, f"{guard.CONFIG} is not JSON ({exc})"
    except SettingsError as exc:
        return None, f"{guard.CONFIG} is invalid ({exc})"
    return GuardLease(settings.lease, settings.interval), ""


def fence_script(reason: str) -> str:
    return "\n".join(
        [
            _read_guard_lines(),
            "set -e",
            "mkdir -p /etc/mxctl",
            f"cat > {RULES_FILE} <<'MXCTL_EOF'\n{FENCE_RULES}MXCTL_EOF",
            f"cat > /etc/systemd/system/{UNIT} <<'MXCTL_EOF'\n{FENCE_UNIT_TEXT}MXCTL_EOF",
            f"printf '%s\\n' {shlex.quote(reason)} > {MARKER}",
            f"nft -f {RULES_FILE}",
            f"systemctl daemon-reload && systemctl enable --quiet {UNIT} || true",
            f"nft list table inet {FENCE_TABLE} >/dev/null && echo fenced",
            f"nft list table inet {guard.PEER_TABLE} >/dev/null 2>&1 && echo {PEER_ONLY} || true",
        ]
    )


def unfence_script() -> str:
    """Lift the fence, and the guard's memory of having been primary (else it would fence
    itself again); then one guard round, so the host opens now rather than a round later."""
    return "\n".join(
        [
            "set -e",
            # Under the guard's lock: a round in progress could otherwise fence again.
            f"flock {guard.LOCK} sh -c 'rm -f {MARKER} {guard.ROLE_FILE}; "
            f"nft delete table inet {FENCE_TABLE} 2>/dev/null || true'",
            f"systemctl disable --quiet {UNIT} 2>/dev/null || true",
            f"if [ -e {guard.CONFIG} ]; then {guard.ONCE} >/dev/null || true; fi",
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
    said = [line.strip() for line in result.stdout.splitlines() if not line.startswith(GUARD_LINE)]
    if result.exit_code != 0 or "fenced" not in said:
        lease, problem = guard_lease(result.stdout)
        if lease is None and not _shell_ran(result.stdout):
            # Not even the builtins ran (no shell): what the guard said when it last could.
            lease = _GUARDS_SEEN.get(target.name)
            if lease is None:
                problem = (
                    "the host printed nothing (its shell did not run) and showed no guard "
                    f"({guard.CONFIG}) since this controller started"
                )
        detail = result.stderr.strip() or f"fence script exited {result.exit_code}"
        raise FenceFailed(target.name, detail, lease, problem)
    _remember_guard(target.name, result.stdout)
    if PEER_ONLY in said:
        return FenceResult(target.name, True, "client ports reject; replication port peer-only")
    return FenceResult(
        target.name,
        True,
        "client ports reject; replication port open to every address (no mxctl_peer table: "
        "re-run the mail deploy)",
    )


def unfence(target: SshTarget, timeout: float = 10.0) -> None:
    result = run_remote(target, unfence_script(), timeout)
    if result.exit_code != 0:
        raise RemoteError(target.name, "unfence", result.stderr.strip() or "unfence failed")


def fence_marker(target: SshTarget, timeout: float = 10.0) -> str | None:
    """The fence marker's text (why, and by whom), or None when the host is not fenced."""
    result = run_remote(target, f"cat {MARKER}", timeout)
    return result.stdout if result.exit_code == 0 else None


def is_fenced(target: SshTarget, timeout: float = 10.0) -> bool:
    check = f"test -e {MARKER} && nft list table inet {FENCE_TABLE} >/dev/null"
    result = run_remote(target, f"{_read_guard_lines()}\n{check}", timeout)
    _remember_guard(target.name, result.stdout)
    return result.exit_code == 0
