"""The backup agent on the mail hosts, driven over SSH (host keys pinned, as everywhere).

The agent answers every command with one JSON object; this module turns that into dicts
and failures into BackupError naming the host.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config.loader import MxctlConfig
from orchestrator.deploy.backupfiles import AGENT_COMMAND
from orchestrator.errors import MxctlError
from orchestrator.remote import RemoteError, SshTarget, run_remote

REQUIRED = ("dns", "pair", "ssh")
STATE_FILE = "/var/lib/mxctl-backup/state.json"


class BackupError(MxctlError):
    pass


@dataclass(frozen=True)
class AgentReply:
    host: str
    ok: bool
    data: dict[str, Any]


def pair_targets(config: MxctlConfig) -> list[SshTarget]:
    """Both mail hosts of the pair, home primary first."""
    targets = []
    for name in (config.pair.primary, config.pair.standby):
        found = config.dns.mail_host(name)
        if found is None:
            raise BackupError(f"{name} is not in dns.mail_hosts")
        targets.append(config.ssh.to(name, found[1][0]))
    return targets


def call(target: SshTarget, args: Sequence[str], timeout: float = 3600.0) -> AgentReply:
    """Run `mxctl-backup ARGS` on the host; its JSON reply (ok: exit code 0)."""
    command = " ".join(shlex.quote(a) for a in (AGENT_COMMAND, *args))
    result = run_remote(target, command, timeout)
    line = next((ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("{")), "")
    if not line:
        detail = result.stderr.strip()[-300:] or f"exit code {result.exit_code}, no reply"
        if result.exit_code == 127:
            detail = f"{AGENT_COMMAND} is not installed: deploy with mail_backup set"
        raise BackupError(f"{target.name}: backup agent: {detail}")
    return AgentReply(target.name, result.exit_code == 0, json.loads(line))


def primary(config: MxctlConfig) -> SshTarget:
    """The host whose agent says it is the primary (the MX names it and it is not fenced):
    the same rule the scheduled backups follow."""
    reasons = []
    for target in pair_targets(config):
        try:
            reply = call(target, ["role"], timeout=30)
        except (RemoteError, BackupError) as exc:
            reasons.append(str(exc))
            continue
        if reply.data.get("primary"):
            return target
        reasons.append(f"{target.name}: {reply.data.get('why')}")
    raise BackupError("no host of the pair is the primary: " + "; ".join(reasons))


def read_states(config: MxctlConfig, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """{host: agent state} of both hosts; {"installed": False} where the deploy put no agent
    (no mail_backup), {"error": ...} where the host cannot be read."""
    states: dict[str, dict[str, Any]] = {}
    command = (
        f"if [ -x {AGENT_COMMAND} ]; then cat {STATE_FILE} 2>/dev/null || echo '{{}}'; "
        "else echo '{\"installed\": false}'; fi"
    )
    for target in pair_targets(config):
        try:
            result = run_remote(target, command, timeout)
            states[target.name] = json.loads(result.stdout or "{}")
        except (RemoteError, ValueError) as exc:
            states[target.name] = {"error": str(exc)}
    return states
