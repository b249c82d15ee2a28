"""When an operator may lift a fence by hand, and what `mxctl switchback` says about
fenced hosts: pure rules, tables."""

from __future__ import annotations

import pytest

from orchestrator.cli.main import build_parser
from orchestrator.controller.model import ControllerState
from orchestrator.controller.unfencing import fence_note, unfence_refusal
from orchestrator.controller.world import DnsView

MX1, MX2 = "mx1.example.test", "mx2.example.test"


def dns(target: str | None, backup: str | None = None, error: str | None = None) -> DnsView:
    if error:
        return DnsView({}, error)
    points = {"example.test MX": target, "mail.example.test A": target}
    return DnsView(points, backups={"example.test MX": backup})


HOME = ControllerState(MX1, MX2)
FAILED_OVER = ControllerState(MX2, MX1, fenced=frozenset({MX1}))

CASES = [
    # (what, host, DNS, the controller's state, refused because ... or None)
    ("guard-fenced backup MX after a switchback", MX2, dns(MX1, MX2), HOME, None),
    ("guard-fenced primary", MX1, dns(MX1, MX2), HOME, None),
    ("neither primary nor backup", MX2, dns(MX1), HOME, "neither as primary nor as backup"),
    ("DNS split between the hosts", MX2, dns(None), HOME, "neither as primary nor as backup"),
    ("DNS unreadable", MX2, dns(None, error="SERVFAIL"), HOME, "cannot read DNS"),
    ("fenced by the controller's failover", MX1, dns(MX2, MX1), FAILED_OVER,
     "the controller fenced"),
    ("in the fenced set but DNS names it primary", MX1, dns(MX1),
     ControllerState(MX1, MX2, fenced=frozenset({MX1})), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("host", "view", "state", "refused"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_unfence_refusal(
    host: str, view: DnsView, state: ControllerState, refused: str | None
) -> None:
    why = unfence_refusal(host, view, state)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why, why


NOTES = [
    ("not fenced", None, None),
    ("fenced by its guard",
     "self-fenced by mxctl-guard: demoted: this host was primary (last 11.0 s ago)\n",
     "mx2.example.test is fenced by its own guard (demoted: this host was primary"),
    ("fenced by a failover", "failover to mx1.example.test: mx2 dead\n",
     "mx2.example.test is fenced: failover to mx1.example.test: mx2 dead"),
]  # fmt: skip


@pytest.mark.parametrize(("marker", "note"), [c[1:] for c in NOTES], ids=[c[0] for c in NOTES])
def test_fence_note(marker: str | None, note: str | None) -> None:
    said = fence_note(MX2, marker)
    if note is None:
        assert said is None
    else:
        assert said is not None and said.startswith(note), said
    if marker and marker.startswith("self-fenced"):
        assert said is not None and "`mxctl unfence mx2`" in said


def test_unfence_is_a_command() -> None:
    args = build_parser().parse_args(["unfence", "mx2"])
    assert args.host == "mx2" and args.func.__name__ == "cmd_unfence"
