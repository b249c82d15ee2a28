"""Users unit: Dovecot's passwd-file (hashed passwords) and Postfix's mailbox maps."""

from __future__ import annotations

import shlex

from mxctl_deploys.common import host_vars, mail_pair, secret_file, template
from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.api.operation import OperationMeta

from orchestrator.deploy.hostfiles import DOVECOT_USERS, parse_passwd_file, passwd_file


class PasswdFileHashes(FactBase[dict[str, str]]):
    """{user: stored hash} of a Dovecot passwd-file; empty when the file is missing."""

    default = dict

    def command(self, path: str) -> str:
        return f"cat {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_passwd_file("\n".join(output))


@deploy("Users")
def accounts() -> list[OperationMeta]:
    """Write the users; returns the operations whose change needs a Postfix reload
    (Dovecot re-reads its passwd-file by itself)."""
    pair = mail_pair()
    current = host.get_fact(PasswdFileHashes, path=DOVECOT_USERS)
    secret_file(
        "Dovecot users (hashed passwords)",
        passwd_file(pair, current),
        DOVECOT_USERS,
        group="dovecot",
        mode="640",
    )
    variables = host_vars()
    return [
        template("Postfix mailboxes", "postfix/vmailbox.j2", "/etc/postfix/vmailbox", variables),
        template("Postfix aliases", "postfix/virtual.j2", "/etc/postfix/virtual", variables),
        template(
            "Postfix sender logins",
            "postfix/sender_login.j2",
            "/etc/postfix/sender_login",
            variables,
        ),
    ]
