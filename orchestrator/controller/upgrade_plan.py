"""The rolling upgrade of a running pair to a new Debian release, one host at a time.

Pure: the pair as it is now (who serves, who is fenced, which release each host runs) in,
the ordered steps (or the reason there can be none) out. The executor
(`orchestrator/controller/upgrade.py`) carries the steps out and journals each.

Order: the primary first, so the host the world uses is upgraded while the other one,
untouched and still on the old release, serves. For the primary A with standby B:
switchover to B (its convergence check and TTL choreography) -> upgrade A's OS -> check A
now runs the target release -> deploy A (the new release's configuration and replication)
-> converge (A holds every mailbox B holds: the mixed old/new pair replicates) ->
switchback to A. Then the standby B, which serves nothing: upgrade B -> check -> deploy B
-> converge (B holds every mailbox A holds). A host already on the target is left alone,
so running the upgrade again after an interruption carries on where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UPGRADE_ACTIONS = ("switchover", "upgrade-os", "check-release", "deploy", "converge", "switchback")


@dataclass(frozen=True)
class UpgradeStep:
    action: str  # one of UPGRADE_ACTIONS
    host: str  # fqdn the step works on (switchover/switchback: the host mail moves to)
    why: str  # one sentence for the journal and the dry run

    @property
    def name(self) -> str:
        return f"{self.action} {self.host.split('.')[0]}"


@dataclass(frozen=True)
class PairView:
    home_primary: str  # config.pair.primary: where mail lives in normal running
    home_standby: str
    primary: str  # who serves now (controller state)
    fenced: frozenset[str]
    releases: Mapping[str, str]  # fqdn -> codename the host runs now


@dataclass(frozen=True)
class UpgradePlan:
    steps: tuple[UpgradeStep, ...]
    blocker: str | None  # why nothing may run now (then `steps` is empty)
    skipped: tuple[str, ...]  # hosts already on the target release


def upgrade_blocker(pair: PairView, target: str, known: tuple[str, ...]) -> str | None:
    if target not in known:
        return f"target release {target!r} is not supported: use one of {', '.join(known)}"
    for host in (pair.home_primary, pair.home_standby):
        release = pair.releases.get(host)
        if release is None:
            return f"the release of {host} is unknown: it must answer over SSH first"
        if release not in known:
            return f"{host} runs {release!r}, which mxctl does not deploy"
        if known.index(release) > known.index(target):
            return f"{host} runs {release}, newer than the target {target}: no downgrade"
    if pair.primary != pair.home_primary:
        return (
            f"mail is on {pair.primary}, not on the home primary {pair.home_primary} "
            "(a failover or an unfinished switch): run `mxctl switchback` first"
        )
    if pair.fenced:
        return f"{', '.join(sorted(pair.fenced))} is fenced: switch back and unfence first"
    return None


def _host_steps(host: str, peer: str, target: str) -> list[UpgradeStep]:
    return [
        UpgradeStep("upgrade-os", host, f"{host} moves to Debian {target} while {peer} serves"),
        UpgradeStep("check-release", host, f"{host} must now run {target}, or nothing more runs"),
        UpgradeStep("deploy", host, f"{host} gets the {target} configuration and replication"),
        UpgradeStep("converge", host, f"{host} must hold every mailbox {peer} holds"),
    ]


def plan_upgrade(
    pair: PairView, target: str, known: tuple[str, ...] = ("bookworm", "trixie")
) -> UpgradePlan:
    """The steps taking both hosts of `pair` to `target`, primary first."""
    blocker = upgrade_blocker(pair, target, known)
    if blocker is not None:
        return UpgradePlan((), blocker, ())
    a, b = pair.home_primary, pair.home_standby
    steps: list[UpgradeStep] = []
    skipped = tuple(h for h in (a, b) if pair.releases[h] == target)
    if a not in skipped:
        steps.append(UpgradeStep("switchover", b, f"mail moves away from {a} before its upgrade"))
        steps += _host_steps(a, b, target)
        steps.append(UpgradeStep("switchback", a, f"mail returns to {a}, now on {target}"))
    if b not in skipped:
        steps += _host_steps(b, a, target)
    return UpgradePlan(tuple(steps), None, skipped)
