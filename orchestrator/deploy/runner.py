"""Run pyinfra deploys as a subprocess and read its JSON results.

`pyinfra --json -y` reports, per operation, which hosts changed, which did not and which
failed; that is what "a second run changes nothing" is asserted on. The inventory is read
the same way (`debug-inventory --json`, which connects to nothing) so `mxctl deploy` can
validate it before pyinfra opens a single connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.deploy.spec import MailPair, load_pair
from orchestrator.errors import ConfigError, MxctlError

# pyinfra runs a deploy function by its import path, so the deploys work from any directory
# once mxctl is installed: no checkout needed, the inventory is the operator's own file.
MAIL_DEPLOY = "mxctl_deploys.mailpair.apply"
CONTROLLER_DEPLOY = "mxctl_deploys.controller.apply"
DEFAULT_TIMEOUT = 600.0


class DeployFailed(MxctlError):
    """pyinfra could not complete a deploy; the message says where to look."""


@dataclass(frozen=True)
class OperationResult:
    name: str
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class RunResult:
    command: tuple[str, ...]
    returncode: int
    seconds: float
    operations: tuple[OperationResult, ...]
    failed_hosts: tuple[str, ...]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed_hosts

    def changed(self, host: str | None = None) -> list[str]:
        """Names of the operations that changed something (on `host`, or on any host)."""
        return [
            op.name for op in self.operations if (host in op.changed if host else bool(op.changed))
        ]

    def looks_like_bare_install(self, hosts: Sequence[str]) -> bool:
        """Whether this run set the hosts up from scratch: packages installed and most
        operations changed on every one of them (a re-run that merely caught someone
        else's apt run mid-way changes one or two operations, not most)."""
        return bool(self.operations) and all(
            any(name.endswith("Install packages") for name in self.changed(host))
            and len(self.changed(host)) > len(self.operations) // 2
            for host in hosts
        )

    def failed(self) -> list[str]:
        return [op.name for op in self.operations if op.failed]

    def summary(self) -> str:
        changed = sum(len(op.changed) for op in self.operations)
        same = sum(len(op.unchanged) for op in self.operations)
        failed = sum(len(op.failed) for op in self.operations)
        return (
            f"{len(self.operations)} operations in {self.seconds:.1f} s: {changed} changed, "
            f"{same} no change, {failed} failed (host x operation)"
        )


def _pyinfra() -> list[str]:
    return [sys.executable, "-m", "pyinfra"]


def parse_results(stdout: str) -> tuple[tuple[OperationResult, ...], tuple[str, ...]]:
    """Operations and failed hosts from `pyinfra --json` output."""
    payload = json.loads(stdout)
    results = payload.get("results") or {}
    operations = tuple(
        OperationResult(
            name=str(op["name"]),
            changed=tuple(op.get("success", ())),
            unchanged=tuple(op.get("no_change", ())),
            failed=tuple(op.get("error", ())),
        )
        for op in results.get("operations", ())
    )
    return operations, tuple(results.get("failed_hosts", ()))


def deploy_command(
    inventory: str,
    deploy: str,
    limit: Sequence[str] = (),
    data: Mapping[str, str] | None = None,
    dry: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    command = [*_pyinfra(), "--json", "-y", *extra_args]
    for name in limit:
        command += ["--limit", name]
    for key, value in (data or {}).items():
        command += ["--data", f"{key}={value}"]
    if dry:
        command.append("--dry")
    return [*command, inventory, deploy]


def run_deploy(
    inventory: str,
    deploy: str = MAIL_DEPLOY,
    limit: Sequence[str] = (),
    data: Mapping[str, str] | None = None,
    dry: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
    extra_args: Sequence[str] = (),
) -> RunResult:
    """Run pyinfra (always under a timeout); a result even when it fails, so callers can
    show what failed. DeployFailed only when there is nothing to read."""
    command = deploy_command(inventory, deploy, limit, data, dry, extra_args)
    start = clock.monotonic()
    try:
        proc = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DeployFailed(
            f"pyinfra did not finish within {timeout:.0f} s ({' '.join(command)})"
        ) from None
    seconds = clock.monotonic() - start
    try:
        operations, failed_hosts = parse_results(proc.stdout) if proc.stdout.strip() else ((), ())
    except (ValueError, KeyError, TypeError):
        operations, failed_hosts = (), ()
    return RunResult(
        command=tuple(command),
        returncode=proc.returncode,
        seconds=seconds,
        operations=operations,
        failed_hosts=failed_hosts,
        stderr=proc.stderr,
    )


def inventory_hosts(
    inventory: str, cwd: Path | None = None, timeout: float = 120.0
) -> list[dict[str, Any]]:
    """[{name, groups, data}] as pyinfra sees the inventory (group data merged)."""
    command = [*_pyinfra(), "--json", inventory, "debug-inventory"]
    try:
        proc = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DeployFailed(f"pyinfra could not read {inventory} within {timeout:.0f} s") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-3:]
        raise ConfigError(f"{inventory}: pyinfra could not load it: {' / '.join(detail)}")
    hosts: list[dict[str, Any]] = json.loads(proc.stdout)
    return hosts


def preflight(inventory: str, cwd: Path | None = None) -> MailPair:
    """Validate the inventory's mail pair and resolve its secrets, touching no host."""
    hosts = inventory_hosts(inventory, cwd)
    mail = {h["name"]: h["data"] for h in hosts if "mail" in h.get("groups", ())}
    return load_pair(mail)
