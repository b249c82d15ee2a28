"""The environment a failover hook runs with: PATH, LANG and mxctl's own MXCTL_* variables.

Hooks are operators' scripts, not part of the controller: they must not inherit its
environment, where `env:` secrets (TSIG keys, API tokens, the probe password) were read
from. Only the move's MXCTL_* variables are passed, not any MXCTL_* the controller happened
to be started with, since an operator may well name a secret MXCTL_SOMETHING.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_LANG = "C.UTF-8"


def hook_environment(
    kind: str, old_primary: str, new_primary: str, reason: str, parent: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment of a hook; `parent` (the controller's) gives PATH and LANG."""
    return {
        "PATH": parent.get("PATH") or DEFAULT_PATH,
        "LANG": parent.get("LANG") or DEFAULT_LANG,
        "MXCTL_EVENT": kind,
        "MXCTL_OLD_PRIMARY": old_primary,
        "MXCTL_NEW_PRIMARY": new_primary,
        "MXCTL_REASON": reason,
    }
