"""Commands on mail hosts over SSH (paramiko), with host keys verified against a pinned file.

Never auto-accept a host key: a controller that fences or promotes the wrong machine is
worse than one that does nothing. Failures come back as RemoteError with a kind
(unreachable, timeout, host-key, auth) so callers can tell "host down" from "misconfigured".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from orchestrator.errors import MxctlError


class RemoteError(MxctlError):
    def __init__(self, host: str, kind: str, detail: str) -> None:
        super().__init__(f"{host}: {kind}: {detail}")
        self.host, self.kind, self.detail = host, kind, detail


@dataclass(frozen=True)
class SshAccess:
    """How mxctl logs in to the hosts it manages: the one shape of SSH credentials, from
    `[ssh]` in mxctl.toml, the probes' targets and the lab alike."""

    user: str
    key_file: str
    known_hosts: str  # host keys are verified against this file, never learnt
    port: int = 22
    timeout: float = 10.0  # seconds for connect, auth and each command

    def to(self, name: str, address: str) -> SshTarget:
        return SshTarget(name, address, self)


@dataclass(frozen=True)
class SshTarget:
    """One host to reach with `access`; `name` is what errors call it."""

    name: str
    address: str
    access: SshAccess


@dataclass(frozen=True)
class RemoteResult:
    exit_code: int
    stdout: str
    stderr: str


def pinned_client(target: SshTarget) -> paramiko.SSHClient:
    """A client that trusts only the host keys in the target's known_hosts file."""
    client = paramiko.SSHClient()
    access = target.access
    try:
        client.load_host_keys(access.known_hosts)
    except OSError as exc:
        raise paramiko.SSHException(f"cannot read known_hosts {access.known_hosts}: {exc}") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def connect_pinned(client: paramiko.SSHClient, target: SshTarget, timeout: float) -> None:
    """Connect with the target's key only (no agent, no other keys), every wait bounded."""
    access = target.access
    client.connect(
        target.address,
        port=access.port,
        username=access.user,
        key_filename=access.key_file,
        look_for_keys=False,
        allow_agent=False,
        timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
        channel_timeout=timeout,
    )


def exec_remote(
    target: SshTarget,
    command: str,
    timeout: float = 10.0,
    on_step: Callable[[str], None] | None = None,
) -> RemoteResult:
    """Run one command with the host key pinned; paramiko's and the socket's exceptions
    propagate, for callers that classify failures their own way (the probes do)."""
    step = on_step or (lambda _: None)
    client = pinned_client(target)
    try:
        step("ssh-connect")
        connect_pinned(client, target, timeout)
        step("ssh-command")
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return RemoteResult(stdout.channel.recv_exit_status(), out, err)
    finally:
        client.close()


def run_remote(target: SshTarget, command: str, timeout: float = 10.0) -> RemoteResult:
    """exec_remote, with every failure as a RemoteError of a named kind."""
    try:
        return exec_remote(target, command, timeout)
    except paramiko.BadHostKeyException:
        raise RemoteError(
            target.name, "host-key", f"key does not match {target.access.known_hosts}: refusing"
        ) from None
    except paramiko.AuthenticationException:
        raise RemoteError(target.name, "auth", f"key {target.access.key_file} refused") from None
    except paramiko.SSHException as exc:
        if "known_hosts" in str(exc):
            raise RemoteError(
                target.name, "host-key", f"not pinned in {target.access.known_hosts}: {exc}"
            ) from None
        raise RemoteError(target.name, "unreachable", str(exc) or type(exc).__name__) from None
    except TimeoutError:
        raise RemoteError(target.name, "timeout", f"no answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise RemoteError(target.name, "unreachable", str(exc)) from None
