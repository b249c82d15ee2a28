"""When an operator may lift a fence by hand, and what to tell them about fenced hosts.

A host's guard fences it when it finds DNS moved away while it was away (see
orchestrator/hostguard/rules.py); the controller fences an old primary in a failover. A
switchback or a switchover to a host unfences it after checking it (check-new-primary).
`mxctl unfence HOST` is for the rest: a host DNS still sends mail to (the primary, or the
backup MX) that its guard fenced. Pure, tested with a table.
"""

from __future__ import annotations

from orchestrator.controller.model import ControllerState
from orchestrator.controller.world import DnsView

GUARD_MARK = "self-fenced by mxctl-guard"  # how the guard's fence marker begins


def unfence_refusal(host: str, dns: DnsView, state: ControllerState) -> str | None:
    """Why `host` must stay fenced (None: it may be unfenced)."""
    if dns.error:
        return f"cannot read DNS ({dns.error}): unfencing needs DNS to name {host}"
    if host not in (dns.target, dns.backup):
        return (
            f"DNS names {host} neither as primary nor as backup MX ({dns.describe()}): "
            "no mail goes to it, so nothing needs it open; a switchover to it checks it "
            "and unfences it"
        )
    if host in state.fenced and host != state.primary:
        return (
            f"the controller fenced {host} (its fenced set holds it) and would fence it "
            f"again; `mxctl switchback` or a switchover to it unfences it after a resync"
        )
    return None


def fence_note(host: str, marker: str | None) -> str | None:
    """A line for the operator when `host` is fenced, saying by whom and the way out."""
    if marker is None:
        return None
    short = host.split(".")[0]
    text = marker.strip() or "no reason recorded"
    if text.startswith(GUARD_MARK):
        return (
            f"{host} is fenced by its own guard ({text[len(GUARD_MARK) :].lstrip(': ')}); "
            f"it refuses every client. Once you know it is current (`mxctl status`), "
            f"`mxctl unfence {short}` lifts the fence (only while DNS names it primary or "
            "backup MX)"
        )
    return f"{host} is fenced: {text}"
