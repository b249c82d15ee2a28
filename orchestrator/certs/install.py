"""Put a renewed certificate on a mail host and reload Postfix and Dovecot in place.

The files go where the deploy puts them (`orchestrator.deploy.hostfiles`): Dovecot's
TLS_CERT and TLS_KEY, and Postfix's TLS_CHAIN (key and chain in one file), over SFTP with
the host key pinned, each written beside its target (created 0600/0644 before any byte is
written); then ONE remote command renames them over the old ones and runs `postfix
reload` and `doveadm reload`. Postfix's smtpd processes read their file when they start:
with key and chain in one file, one rename swaps both, so no smtpd ever pairs a new key
with an old certificate. Dovecot reads its two files only at the reload, after both
renames. A reload, never a restart: open IMAP sessions and SMTP transactions carry on
with the old certificate until they end.
"""

from __future__ import annotations

import paramiko

from orchestrator.deploy.hostfiles import TLS_CERT, TLS_CHAIN, TLS_KEY, key_and_chain
from orchestrator.errors import CertError
from orchestrator.remote import SshTarget, connect_pinned, pinned_client, run_remote

NEW = ".mxctl-new"
RELOAD = "postfix reload && doveadm reload"
SWAP_AND_RELOAD = " && ".join(
    [*(f"mv -f {path}{NEW} {path}" for path in (TLS_KEY, TLS_CERT, TLS_CHAIN)), RELOAD]
)


def push_certificate(target: SshTarget, chain_pem: bytes, key_pem: bytes) -> None:
    """Install on `target` and reload; CertError naming the host and step otherwise."""
    try:
        _upload(
            target,
            (
                (TLS_KEY, key_pem, 0o600),
                (TLS_CERT, chain_pem, 0o644),
                (TLS_CHAIN, key_and_chain(key_pem, chain_pem), 0o600),
            ),
        )
    except (paramiko.SSHException, OSError) as exc:
        raise CertError(f"{target.name}: uploading the certificate failed: {exc}") from None
    result = run_remote(target, SWAP_AND_RELOAD, timeout=max(target.access.timeout, 30.0))
    if result.exit_code != 0:
        raise CertError(
            f"{target.name}: installing and reloading exited {result.exit_code}: "
            f"{result.stderr.strip()[-300:]}"
        )


def _upload(target: SshTarget, files: tuple[tuple[str, bytes, int], ...]) -> None:
    client = pinned_client(target)
    try:
        connect_pinned(client, target, target.access.timeout)
        sftp = client.open_sftp()
        try:
            for path, data, mode in files:
                with sftp.open(path + NEW, "wb") as handle:
                    handle.chmod(mode)  # before the data: a key is never readable by others
                    handle.write(data)
        finally:
            sftp.close()
    finally:
        client.close()


def read_host_certificate(target: SshTarget) -> bytes:
    """The certificate chain the host's Postfix and Dovecot are configured with."""
    result = run_remote(target, f"cat {TLS_CERT}", timeout=target.access.timeout)
    if result.exit_code != 0:
        raise CertError(f"{target.name}: cannot read {TLS_CERT}: {result.stderr.strip()[-200:]}")
    return result.stdout.encode()
