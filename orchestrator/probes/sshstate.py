"""The host-state probe: one SSH command (orchestrator.remote, pinned host keys), parsed.

paramiko is blocking, so the session runs in a worker thread; its own connect, banner,
auth and channel timeouts equal the probe's, so a thread never outlives a round for long.
"""

from __future__ import annotations

import asyncio
import socket

import paramiko

from orchestrator.clock import Clock
from orchestrator.probes.hoststate import HostState, parse_host_state, state_script
from orchestrator.probes.result import ErrorClass, ProbeResult, Progress, StepFailed
from orchestrator.probes.runner import run_probe
from orchestrator.probes.settings import MailHostTarget, ProbeSettings
from orchestrator.remote import RemoteResult, SshAccess, exec_remote


def _translate(exc: Exception, step: str) -> StepFailed | Exception:
    """paramiko's exceptions as our classes; socket errors are left to the runner."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return StepFailed(ErrorClass.HOST_KEY, f"host key differs from the pinned one: {exc}")
    if isinstance(exc, paramiko.AuthenticationException):
        return StepFailed(ErrorClass.AUTH, f"SSH authentication failed: {exc}")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        errors = list(exc.errors.values())
        return errors[0] if errors else ConnectionRefusedError(str(exc))
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        if "known_hosts" in text:
            return StepFailed(ErrorClass.HOST_KEY, f"host key not pinned: {text}")
        if "banner" in text.lower() or "timed out" in text.lower():
            return TimeoutError(text)
        return StepFailed(ErrorClass.PROTOCOL, f"SSH failed at {step}: {text}")
    if isinstance(exc, socket.timeout):
        return TimeoutError(str(exc))
    return exc


def run_ssh_command(
    access: SshAccess, address: str, command: str, timeout: float, progress: Progress
) -> RemoteResult:
    """Run one command; host keys come only from `access.known_hosts`, unknown ones refused."""
    target = access.to(address, address)
    try:
        return exec_remote(target, command, timeout, progress.at)
    except Exception as exc:
        translated = _translate(exc, progress.step)
        if translated is exc:
            raise
        raise translated from exc


def describe(state: HostState, progress: Progress) -> None:
    if state.replicator is not None:
        progress.note(
            replication_users=state.replicator.users,
            replication_failed=len(state.replicator.failed_users),
            replication_waiting_failed=state.replicator.waiting_failed,
            replication_oldest_success_age=state.replicator.oldest_success_age,
        )
    if state.queue is not None:
        progress.note(
            queue_size=state.queue.size,
            queue_deferred=state.queue.deferred,
            queue_oldest_age=round(state.queue.oldest_age, 1),
        )
    if state.volume is not None:
        progress.note(
            volume=state.volume.mount,
            volume_free_bytes=state.volume.free,
            volume_free_percent=round(state.volume.free_percent, 1),
        )
    for daemon, daemon_state in sorted(state.daemons.items()):
        progress.note(**{daemon: daemon_state})


async def host_state(settings: ProbeSettings, host: MailHostTarget, clock: Clock) -> ProbeResult:
    timeout = settings.timeouts.host_state

    async def body(progress: Progress) -> None:
        if host.ssh is None:
            raise StepFailed(ErrorClass.INTERNAL, f"no SSH access configured for {host.name}")
        # The commands run side by side; half the budget for them, half for SSH itself.
        script = state_script(settings.limits.mail_volume, timeout / 2)
        output = await asyncio.to_thread(
            run_ssh_command, host.ssh, host.address, script, timeout, progress
        )
        progress.at("parse")
        state = parse_host_state(output.stdout, clock.now())
        describe(state, progress)
        problems = state.problems(settings.limits)
        if problems:
            raise StepFailed(ErrorClass.UNHEALTHY, "; ".join(problems))

    return await run_probe("host-state", host.name, timeout, body, clock)
