"""What every unit of the mail deploy shares: the validated pair and template rendering."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host, inventory
from pyinfra.api.exceptions import NoGroupError, PyinfraError
from pyinfra.api.operation import OperationMeta
from pyinfra.context import ctx_inventory
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import files

from orchestrator.deploy.hostfiles import template_vars
from orchestrator.deploy.release import MailRelease, mail_release
from orchestrator.deploy.spec import MailPair, load_pair
from orchestrator.errors import ConfigError

# Package data in an installed mxctl; in a checkout, deploys/templates links to templates/.
TEMPLATES = Path(__file__).parent / "templates"
MAIL_GROUP = "mail"

_pairs: dict[int, MailPair] = {}


class InventoryError(PyinfraError):
    """Bad inventory data; raised before any operation so no host is changed."""


def mail_pair() -> MailPair:
    """The validated pair, loaded once per inventory (every secret resolved locally)."""
    key = id(ctx_inventory.get())  # one pyinfra run, one inventory
    if key not in _pairs:
        try:
            hosts = inventory.get_group(MAIL_GROUP)
        except NoGroupError:
            raise InventoryError(
                f"the inventory has no group `{MAIL_GROUP}`: list the two mail hosts in it"
            ) from None
        try:
            _pairs[key] = load_pair({h.name: h.data.dict() for h in hosts})
        except ConfigError as exc:
            lines = "\n    ".join(exc.problems)
            raise InventoryError(
                f"invalid inventory, nothing was changed on any host:\n    {lines}"
            ) from None
    return _pairs[key]


def is_mail_host() -> bool:
    try:
        return host.name in {h.name for h in inventory.get_group(MAIL_GROUP)}
    except NoGroupError:
        return False


def release() -> MailRelease:
    """The current host's Debian release, read from its /etc/os-release (a fact)."""
    try:
        return mail_release(host.name, host.get_fact(LinuxDistribution))
    except ConfigError as exc:
        raise InventoryError("; ".join(exc.problems)) from None


def host_vars() -> dict[str, Any]:
    """Template variables for the current host (no secrets)."""
    return template_vars(mail_pair(), host.name, release())


def template(
    name: str,
    src: str,
    dest: str,
    variables: dict[str, Any],
    mode: str = "644",
    group: str = "root",
    root: Path = TEMPLATES,
) -> OperationMeta:
    """Render <root>/<src> (mxctl's templates by default) to `dest`; named, so pyinfra
    does not echo the arguments.

    The directory of `dest` must exist (made by a package or an earlier operation): not
    checking it saves one round trip per file on every run."""
    return files.template(
        name=name,
        src=str(root / src),
        dest=dest,
        user="root",
        group=group,
        mode=mode,
        create_remote_dir=False,
        jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
        **variables,
    )


def secret_file(
    name: str, content: str, dest: str, user: str = "root", group: str = "root", mode: str = "600"
) -> OperationMeta:
    """Upload secret-bearing content; only a hash of it appears in pyinfra's output. As
    for `template`, the directory of `dest` must exist."""
    return files.put(
        name=name,
        src=StringIO(content),
        dest=dest,
        user=user,
        group=group,
        mode=mode,
        create_remote_dir=False,
    )
