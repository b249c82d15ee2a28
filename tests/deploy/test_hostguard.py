"""mxctl-guard without a lab: the decision table, the rules it writes, its settings, and
that it ships as a package of its own (stdlib + dnspython + itself)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

import orchestrator.hostguard
from orchestrator.deploy.hostfirewall import firewall_rules, guard_settings
from orchestrator.deploy.spec import load_pair
from orchestrator.hostguard.hostnet import closed_ruleset, ruleset
from orchestrator.hostguard.rules import (
    ALL_OPEN,
    CLOSED,
    Decision,
    Identity,
    PortGroup,
    Role,
    ServerView,
    Situation,
    decide,
    lease_deadline,
)
from orchestrator.hostguard.settings import SettingsError, parse_settings
from tests.deploy.factories import valid_inventory

ME = Identity("mx1.example.test", frozenset({"10.0.0.21"}))
SMTP, CLIENTS = frozenset({PortGroup.SMTP}), frozenset({PortGroup.CLIENTS})


def view(
    server: str = "ns1", mx: str = "mx1", a: str = "10.0.0.21", backup: str | None = None
) -> ServerView:
    records = [(10, f"{mx}.example.test.")] + ([(20, f"{backup}.example.test.")] if backup else [])
    return ServerView(
        server,
        {"example.test": tuple(records), "example.org": ((10, f"{mx}.example.test."),)},
        {"mail.example.test": frozenset({a})},
    )


AT_ME, ELSEWHERE = view(), view(mx="mx2", a="10.0.0.22")
DOWN = ServerView("ns1", error="Timeout")
LAGGING = replace(AT_ME, server="ns2")


def situation(*views: ServerView, **changes: object) -> Situation:
    base = Situation(
        views=views,
        me=ME,
        role=Role.PRIMARY,
        confirmed_at=99.0,
        fenced=False,
        link_up=True,
        open_now=ALL_OPEN,
        started_at=100.0,
        lease=3.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


CASES = [
    # (what, situation, role, open, self_fence, reason starts with)
    ("named primary", situation(AT_ME), Role.PRIMARY, ALL_OPEN, False, "primary"),
    ("fresh host named", situation(AT_ME, role=Role.UNKNOWN, confirmed_at=None, open_now=CLOSED),
     Role.PRIMARY, ALL_OPEN, False, "primary"),
    ("MX here, client name elsewhere", situation(view(a="10.0.0.22")), Role.PRIMARY, SMTP, False,
     "primary"),
    ("client name here, MX elsewhere", situation(view(mx="mx2")), Role.PRIMARY, CLIENTS, False,
     "primary"),
    ("backup MX is a standby with 25 open",
     situation(view(mx="mx2", a="10.0.0.22", backup="mx1"), role=Role.STANDBY),
     Role.STANDBY, ALL_OPEN, False, "standby"),
    ("standby stays open for probes", situation(ELSEWHERE, role=Role.STANDBY, confirmed_at=None),
     Role.STANDBY, ALL_OPEN, False, "standby"),
    ("live handover (switchback)", situation(ELSEWHERE, confirmed_at=98.0), Role.STANDBY,
     ALL_OPEN, False, "standby"),
    ("thawed after a failover", situation(ELSEWHERE, confirmed_at=40.0, open_now=CLOSED),
     Role.DEMOTED, CLOSED, True, "demoted"),
    ("rebooted after a failover", situation(ELSEWHERE, confirmed_at=None, open_now=CLOSED),
     Role.DEMOTED, CLOSED, True, "demoted"),
    ("demoted and already fenced", situation(ELSEWHERE, confirmed_at=None, fenced=True),
     Role.DEMOTED, CLOSED, False, "demoted"),
    ("fenced standby", situation(ELSEWHERE, role=Role.STANDBY, fenced=True), Role.STANDBY,
     CLOSED, False, "fenced"),
    ("named but fenced", situation(AT_ME, fenced=True), Role.PRIMARY, CLOSED, False,
     "DNS names this host primary but it is fenced"),
    ("no server answers: keep open, what is left of the lease", situation(DOWN), Role.PRIMARY,
     ALL_OPEN, False, "no authoritative server answered"),
    ("cut off from every server for longer than the lease: closed",
     situation(DOWN, confirmed_at=96.0), Role.PRIMARY, CLOSED, False,
     "no authoritative server answered"),
    ("cut off, the guard restarted (never confirmed): closed",
     situation(DOWN, confirmed_at=None), Role.PRIMARY, CLOSED, False,
     "no authoritative server answered"),
    ("standby cut off keeps its ports (no claim to be primary)",
     situation(DOWN, role=Role.STANDBY, confirmed_at=None), Role.STANDBY, ALL_OPEN, False,
     "no authoritative server answered"),
    ("no server answers, lease lapsed: stay closed", situation(DOWN, open_now=CLOSED),
     Role.PRIMARY, CLOSED, False, "no authoritative server answered"),
    ("own link down: close", situation(DOWN, link_up=False), Role.PRIMARY, CLOSED, False,
     "own link down"),
    ("one server down, the other answers", situation(DOWN, ELSEWHERE, confirmed_at=10.0),
     Role.DEMOTED, CLOSED, True, "demoted"),
    ("servers disagree: keep", situation(ELSEWHERE, LAGGING, open_now=SMTP), Role.PRIMARY, SMTP,
     False, "authoritative servers disagree"),
    ("servers disagree after a lapse: closed", situation(ELSEWHERE, LAGGING, open_now=CLOSED),
     Role.PRIMARY, CLOSED, False, "authoritative servers disagree"),
    ("servers disagree 9 s into a move, heard all along: kept",
     situation(ELSEWHERE, LAGGING, confirmed_at=91.0, named_at=99.0), Role.PRIMARY, ALL_OPEN,
     False, "authoritative servers disagree"),
    ("servers disagree longer than propagation allows: closed",
     situation(ELSEWHERE, LAGGING, confirmed_at=30.0, named_at=99.0), Role.PRIMARY, CLOSED,
     False, "authoritative servers disagree"),
    ("thawed into a disagreement (not heard through): closed",
     situation(ELSEWHERE, LAGGING, confirmed_at=40.0, named_at=40.0), Role.PRIMARY, CLOSED,
     False, "authoritative servers disagree"),
    ("slow switchback: names agree elsewhere after a disagreement heard all along",
     situation(ELSEWHERE, replace(ELSEWHERE, server="ns2"), confirmed_at=91.0, named_at=99.0),
     Role.STANDBY, ALL_OPEN, False, "standby: the names moved away"),
    ("slow move past the propagation bound, heard all along: standby, not demoted",
     situation(ELSEWHERE, confirmed_at=30.0, named_at=99.0), Role.STANDBY, ALL_OPEN, False,
     "standby: the names moved away"),
    ("slow switchback onto a fenced host: standby, closed",
     situation(ELSEWHERE, confirmed_at=91.0, named_at=99.0, fenced=True), Role.STANDBY, CLOSED,
     False, "standby: the names moved away"),
    ("thawed after a failover that a lagging server had begun: demoted",
     situation(ELSEWHERE, confirmed_at=40.0, named_at=45.0, open_now=CLOSED), Role.DEMOTED,
     CLOSED, True, "demoted"),
    ("A set holding another address is not mine", situation(view(mx="mx2", a="10.0.0.99"),
     role=Role.STANDBY), Role.STANDBY, ALL_OPEN, False, "standby"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("situation_", "role", "open_", "self_fence", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(
    situation_: Situation,
    role: Role,
    open_: frozenset[PortGroup],
    self_fence: bool,
    reason: str,
) -> None:
    decision = decide(situation_)
    assert (decision.role, decision.open, decision.self_fence) == (role, open_, self_fence)
    assert decision.reason.startswith(reason), decision.reason


HOLDS = [
    # (what, situation, seconds the opening holds, named_at passed on)
    ("confirmed: a full lease", situation(AT_ME), 3.0, 100.0),
    ("no server answers: what is left of the last lease", situation(DOWN), 2.0, None),
    ("no server answers, lease spent: nothing", situation(DOWN, confirmed_at=96.0), 0.0, None),
    ("disagreement heard all along: renewed, still named",
     situation(ELSEWHERE, LAGGING, named_at=99.5), 3.0, 100.0),
    ("disagreement not heard through: not renewed, chain stays broken",
     situation(ELSEWHERE, LAGGING, confirmed_at=40.0, named_at=40.0), 0.0, 40.0),
    ("disagreement past the propagation bound: not renewed, still heard",
     situation(ELSEWHERE, LAGGING, confirmed_at=30.0, named_at=99.0), 0.0, 100.0),
    ("standby, no server answers: a full lease", situation(DOWN, role=Role.STANDBY), 3.0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("situation_", "hold", "named_at"),
    [case[1:] for case in HOLDS],
    ids=[case[0] for case in HOLDS],
)
def test_how_long_an_opening_holds(
    situation_: Situation, hold: float, named_at: float | None
) -> None:
    decision = decide(situation_)
    assert (decision.hold, decision.named_at) == (hold, named_at), decision


def replay(
    rounds: Sequence[tuple[float, tuple[ServerView, ...]]], role: Role, me: Identity = ME
) -> list[Decision]:
    """Rounds one after another, carrying what the daemon carries between them."""
    decisions: list[Decision] = []
    confirmed_at = named_at = None
    open_now = ALL_OPEN if role is not Role.UNKNOWN else CLOSED
    for at, views in rounds:
        if decisions:
            last_at, last = rounds[len(decisions) - 1][0], decisions[-1]
            open_now = last.open if at < last_at + last.hold else CLOSED
        primary = role is Role.PRIMARY
        remembered = {"confirmed_at": confirmed_at, "named_at": named_at} if primary else {}
        decision = decide(situation(*views, me=me, role=role, started_at=at, open_now=open_now,
                                    **{"confirmed_at": None, **remembered}))  # fmt: skip
        role, confirmed_at, named_at = decision.role, decision.confirmed_at, decision.named_at
        decisions.append(decision)
    return decisions


MX2 = Identity("mx2.example.test", frozenset({"10.0.0.22"}))


def test_a_switchback_that_reaches_one_server_8_s_late_leaves_mx2_an_open_standby() -> None:
    """The lab's report: mx2 primary; the switchback's rewrite reaches ns1 at t=10 and ns2
    at t=18; mx2's guard asks both every second. It must never close nor fence itself."""
    at_mx2 = (view("ns1", mx="mx2", a="10.0.0.22"), view("ns2", mx="mx2", a="10.0.0.22"))
    split = (view("ns1", backup="mx2"), view("ns2", mx="mx2", a="10.0.0.22"))
    moved = (view("ns1", backup="mx2"), view("ns2", backup="mx2"))
    rounds = [(float(t), at_mx2) for t in range(10)]
    rounds += [(float(t), split) for t in range(10, 18)]
    rounds += [(float(t), moved) for t in range(18, 22)]
    decisions = replay(rounds, Role.PRIMARY, MX2)
    assert not any(d.self_fence for d in decisions), [d.reason for d in decisions]
    assert all(d.open == ALL_OPEN for d in decisions), [d.reason for d in decisions]
    assert decisions[-1].role is Role.STANDBY, decisions[-1].reason
    assert "propagated slowly" in decisions[18].reason, decisions[18].reason


def test_a_primary_cut_off_from_every_server_closes_one_lease_after_its_last_confirmation(
) -> None:  # fmt: skip
    rounds = [(float(t), (AT_ME, LAGGING)) for t in range(5)]
    rounds += [(float(t), (DOWN, replace(DOWN, server="ns2"))) for t in range(5, 30)]
    decisions = replay(rounds, Role.PRIMARY)
    open_until = [t + d.hold for (t, _), d in zip(rounds, decisions, strict=True) if d.open]
    assert max(open_until) == 4.0 + 3.0, open_until  # last confirmed at t=4, lease 3 s
    assert decisions[-1].open == CLOSED and decisions[-1].role is Role.PRIMARY


def test_a_split_that_never_heals_closes_the_primary_past_the_propagation_bound() -> None:
    rounds = [(float(t), (AT_ME, LAGGING)) for t in range(5)]
    rounds += [(float(t), (ELSEWHERE, LAGGING)) for t in range(5, 200)]
    decisions = replay(rounds, Role.PRIMARY)
    open_until = [t + d.hold for (t, _), d in zip(rounds, decisions, strict=True) if d.open]
    assert max(open_until) == 4.0 + 60.0 + 3.0, max(open_until)
    assert decisions[-1].open == CLOSED


def test_a_primary_frozen_through_a_failover_that_propagated_slowly_demotes_itself() -> None:
    """Frozen at t=5 for 30 s; on thaw the servers disagree, then agree elsewhere: no
    round heard them in between, so this was a failover behind its back."""
    rounds = [(float(t), (AT_ME, LAGGING)) for t in range(5)]
    rounds += [(35.0, (ELSEWHERE, LAGGING)), (36.0, (ELSEWHERE, LAGGING))]
    rounds += [(37.0, (ELSEWHERE, replace(ELSEWHERE, server="ns2")))]
    decisions = replay(rounds, Role.PRIMARY)
    assert [d.open for d in decisions[5:]] == [CLOSED, CLOSED, CLOSED]
    assert decisions[-1].role is Role.DEMOTED and decisions[-1].self_fence, decisions[-1].reason


def test_a_demotion_says_where_the_names_point() -> None:
    decision = decide(situation(ELSEWHERE, confirmed_at=None))
    assert "MX example.test -> mx2.example.test" in decision.reason
    assert "mail.example.test -> 10.0.0.22" in decision.reason


def test_lease_deadline_never_longer_than_asked() -> None:
    assert lease_deadline(1000.9, 3) == 1003
    assert lease_deadline(1000.0, 3) == 1003


def test_ruleset_opens_leased_groups_and_rejects_the_rest() -> None:
    script = ruleset("mxctl_guard", {PortGroup.SMTP}, 1003, 3)
    assert "flush chain inet mxctl_guard input" in script
    assert "flush set inet mxctl_guard leased" in script
    assert "add element inet mxctl_guard leased { 25 timeout 3000ms }" in script
    assert "tcp dport @leased meta time < 1003 accept" in script
    assert "587 timeout" not in script
    assert script.rstrip().endswith("reject with tcp reset")
    assert "add element" not in closed_ruleset("mxctl_guard")


GOOD = {
    "fqdn": "mx1.example.test",
    "addresses": ["10.0.0.21"],
    "nameservers": ["10.0.0.11", "10.0.0.12"],
    "mx_names": ["example.test"],
    "client_names": ["mail.example.test"],
    "interval": 1,
    "lease": 3,
    "timeout": 0.5,
    "fence_marker": "/etc/mxctl/fenced",
    "fence_rules": "/etc/mxctl/fence.nft",
    "fence_unit": "mxctl-fence.service",
    "role_file": "/var/lib/mxctl/guard-role",
    "status_file": "/run/mxctl-guard/status.json",
    "table": "mxctl_guard",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"addresses": ["mx1"]}, "addresses"),
        ({"nameservers": []}, "nameservers"),
        ({"lease": 1.5}, "lease"),
        ({"interval": "1"}, "interval"),
        ({"fqdn": ""}, "fqdn"),
        ({"propagation": -1}, "propagation"),
    ],
)
def test_bad_guard_settings_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings({**GOOD, **change})
    assert any(p.startswith(f"{field}:") for p in err.value.problems), err.value.problems


def test_deploy_renders_settings_the_guard_accepts(tmp_path: Path) -> None:
    pair = load_pair(valid_inventory(tmp_path), environ={})
    settings = parse_settings(json.loads(guard_settings(pair, "mx1")))
    assert settings.addresses == ("192.0.2.1",)
    assert settings.mx_names == ("example.com", "example.org")
    assert settings.client_names == ("mail.example.com",)
    assert settings.nameservers == ("192.0.2.53", "2001:db8::53")
    assert settings.propagation == 60.0  # mail_guard_propagation's default


def test_a_guard_json_without_propagation_keeps_the_default() -> None:
    assert parse_settings(GOOD).propagation == 60.0
    assert parse_settings({**GOOD, "propagation": 8}).propagation == 8.0


def test_firewall_lets_the_peer_alone_reach_the_replication_port(tmp_path: Path) -> None:
    pair = load_pair(valid_inventory(tmp_path), environ={})
    rules = firewall_rules(pair, "mx1")
    assert "tcp dport 12345 ip saddr { 192.0.2.2 } accept" in rules
    assert "192.0.2.1" not in rules  # its own address is not the peer
    assert rules.index("accept\n") < rules.index("tcp dport 12345 reject with tcp reset")


SOURCE = Path(orchestrator.hostguard.__file__).resolve().parent


def test_guard_imports_only_stdlib_dnspython_and_itself() -> None:
    for path in SOURCE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "dns" or top in sys.stdlib_module_names, f"{path.name}: {name}"


def test_guard_runs_as_its_own_package(tmp_path: Path) -> None:
    """Copied as the deploy copies it, it starts and rejects bad settings by field."""
    shutil.copytree(
        SOURCE, tmp_path / "mxctl_hostguard", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "guard.json").write_text(json.dumps({**GOOD, "lease": 0}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mxctl_hostguard",
            "--once",
            "--config",
            str(tmp_path / "guard.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "invalid settings: lease:" in proc.stderr
