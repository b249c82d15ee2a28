"""Commands on mail hosts over SSH (paramiko), with host keys verified against a pinned file.

Never auto-accept a host key: a controller that fences or promotes the wrong machine is
worse than one that does nothing. Failures come back as RemoteError with a kind
(unreachable, timeout, host-key, auth) so callers can tell "host down" from "misconfigured".
"""

from __future__ import annotations

from dataclasses import dataclass

import paramiko

from orchestrator.errors import MxctlError


class RemoteError(MxctlError):
    def __init__(self, host: str, kind: str, detail: str) -> None:
        super().__init__(f"{host}: {kind}: {detail}")
        self.host, self.kind, self.detail = host, kind, detail


@dataclass(frozen=True)
class SshTarget:
    name: str
    address: str
    user: str
    key_file: str
    known_hosts: str
    port: int = 22


@dataclass(frozen=True)
class RemoteResult:
    exit_code: int
    stdout: str
    stderr: str


def run_remote(target: SshTarget, command: str, timeout: float = 10.0) -> RemoteResult:
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(target.known_hosts)
    except OSError as exc:
        raise RemoteError(
            target.name, "host-key", f"cannot read {target.known_hosts}: {exc}"
        ) from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            key_filename=target.key_file,
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return RemoteResult(stdout.channel.recv_exit_status(), out, err)
    except paramiko.BadHostKeyException:
        raise RemoteError(
            target.name, "host-key", f"key does not match {target.known_hosts}: refusing"
        ) from None
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc):
            raise RemoteError(
                target.name, "host-key", f"not in {target.known_hosts}: pin its key first"
            ) from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise RemoteError(target.name, "auth", f"key {target.key_file} refused") from None
        raise RemoteError(target.name, "unreachable", str(exc) or type(exc).__name__) from None
    except TimeoutError:
        raise RemoteError(target.name, "timeout", f"no answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise RemoteError(target.name, "unreachable", str(exc)) from None
    finally:
        client.close()
