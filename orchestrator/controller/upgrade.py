"""Carry out a rolling upgrade plan (`upgrade_plan.plan_upgrade`), each step journaled.

The moves of mail are the planned switchover and switchback themselves (their own
journaled runs, convergence checks and TTL choreography); this run journals the upgrade's
steps around them under run kind `upgrade`. A failed step stops the run: mail stays
where the last step left it, and the journal says which step failed and why.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller.failover import Move, ssh_target
from orchestrator.controller.journal import Journal
from orchestrator.controller.planned import PlannedMove, PlannedSteps
from orchestrator.controller.runner import Evidence, Runner, RunResult, Step, StepFailed
from orchestrator.controller.upgrade_plan import UpgradePlan, UpgradeStep
from orchestrator.remote import run_remote

RELEASE_COMMAND = '. /etc/os-release && echo "$VERSION_CODENAME"'
OS_UPGRADE_TIMEOUT = 3600.0


# Services held down through the OS upgrade, started again by the deploy that follows.
# Dovecot 2.4 cannot read the 2.3 configuration, and dovecot-core's trigger restarts it
# under `set -e` (`invoke-rc.d dovecot restart`): seen on the lab, "The first setting must
# be dovecot_config_version", then "dpkg: error processing package dovecot-core" and apt
# exiting 100 with the host half configured. Every other maintainer script still restarts
# what it upgrades (sshd must: Debian 12's listener cannot serve a connection once Debian
# 13's sshd is installed).
HELD_SERVICES = ("dovecot",)
POLICY_RC_D = "/usr/sbin/policy-rc.d"


def held_policy(services: tuple[str, ...] = HELD_SERVICES) -> str:
    """A policy-rc.d (Debian's hook every maintainer script asks before it starts or
    restarts a service) that denies `services` (exit 101) and allows everything else."""
    names = "|".join(f"{s}|{s}.service|{s}.socket" for s in services)
    return (
        "#!/bin/sh\n# mxctl upgrade: held down until the deploy writes the new configuration\n"
        f'for word in "$@"; do case "$word" in {names}) exit 101;; esac; done\nexit 0\n'
    )


def apt_upgrade_command(old: str, new: str) -> str:
    """The in-place release upgrade run on a host over SSH: its apt sources move from `old`
    to `new` and apt takes the whole system there. Configuration files the deploy owns keep
    their current content (--force-confold): the deploy writes the new release's ones. The
    held services are stopped first and denied by a policy-rc.d of ours for the upgrade's
    length; a policy-rc.d the host had is set aside and put back on any exit."""
    sources = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*"
    saved = f"{POLICY_RC_D}.mxctl-saved"
    units = " ".join(f"{s}.service" for s in HELD_SERVICES)
    return (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        f"if [ -e {POLICY_RC_D} ]; then mv {POLICY_RC_D} {saved}; fi; "
        f"trap 'rm -f {POLICY_RC_D}; if [ -e {saved} ]; then mv {saved} {POLICY_RC_D}; fi' EXIT; "
        f"printf %s {shlex.quote(held_policy())} > {POLICY_RC_D}; chmod 755 {POLICY_RC_D}; "
        f"systemctl stop {units}; "
        f'for f in {sources}; do [ -f "$f" ] && sed -i \'s/\\b{old}\\b/{new}/g\' "$f"; done; '
        "apt-get -q update; "
        "apt-get -y -q -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "
        "full-upgrade; apt-get -y -q autoremove"
    )


@dataclass(frozen=True)
class UpgradeActions:
    """How each kind of step is done; the CLI wires the real ones, a test its own."""

    move: Callable[[PlannedMove], bool]  # a planned switchover/switchback: True when done
    upgrade_os: Callable[[str], Evidence]  # fqdn -> evidence
    release_of: Callable[[str], str]  # fqdn -> codename it runs now
    deploy: Callable[[str], Evidence]  # fqdn -> evidence
    converge: Callable[[str, str], Evidence]  # (host, peer) -> evidence


def release_over_ssh(config: MxctlConfig, host: str) -> str:
    out = run_remote(ssh_target(config, host), RELEASE_COMMAND, 15)
    if out.exit_code != 0 or not out.stdout.strip():
        raise StepFailed(f"cannot read /etc/os-release on {host}", {"stderr": out.stderr[-500:]})
    return out.stdout.strip().splitlines()[-1]


def apt_upgrade_over_ssh(config: MxctlConfig, host: str, old: str, new: str) -> Evidence:
    out = run_remote(ssh_target(config, host), apt_upgrade_command(old, new), OS_UPGRADE_TIMEOUT)
    tail = out.stdout.strip().splitlines()[-5:]
    if out.exit_code != 0:
        raise StepFailed(
            f"apt full-upgrade on {host} exited {out.exit_code}: {out.stderr.strip()[-300:]}",
            {"stdout_tail": tail},
        )
    return {"how": "apt full-upgrade over ssh", "stdout_tail": tail}


def converge_with_peer(
    config: MxctlConfig, clock: Clock, journal: Journal, run_id: str, host: str, peer: str
) -> Evidence:
    """Resync, then wait until `host` holds every mailbox `peer` holds (the planned
    switch's own check, with `peer` as the side that must be copied)."""
    steps = PlannedSteps(config, clock, journal, run_id)
    try:
        return steps.converge(Move("upgrade", peer, host, "rolling upgrade", False), False)
    finally:
        steps.close()


def local_command(template: str, host: str, timeout: float) -> Evidence:
    """Run an operator-given command here, `{host}` (short name) and `{fqdn}` filled in."""
    cmd = template.format(host=shlex.quote(host.split(".")[0]), fqdn=shlex.quote(host))
    proc = subprocess.run(
        ["sh", "-c", cmd], capture_output=True, text=True, timeout=timeout, check=False
    )
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
    if proc.returncode != 0:
        raise StepFailed(f"`{cmd}` exited {proc.returncode}", {"output_tail": tail})
    return {"how": cmd, "output_tail": tail}


def steps_for(plan: UpgradePlan, target: str, actions: UpgradeActions) -> list[Step]:
    def run_step(step: UpgradeStep) -> Callable[[], Evidence]:
        host = step.host

        def act() -> Evidence:
            if step.action in ("switchover", "switchback"):
                if not actions.move(PlannedMove(step.action, host)):
                    raise StepFailed(f"{step.action} to {host} did not finish: see mxctl history")
                return {"to": host}
            if step.action == "upgrade-os":
                return actions.upgrade_os(host)
            if step.action == "check-release":
                now = actions.release_of(host)
                if now != target:
                    raise StepFailed(f"{host} runs {now} after its upgrade, not {target}")
                return {"release": now}
            if step.action == "deploy":
                return actions.deploy(host)
            if step.action == "converge":
                return actions.converge(host, _peer_of(plan, host))
            raise StepFailed(f"unknown upgrade action {step.action!r}")

        return act

    return [Step(s.name, run_step(s), s.why) for s in plan.steps]


def _peer_of(plan: UpgradePlan, host: str) -> str:
    hosts = {s.host for s in plan.steps} | set(plan.skipped)
    others = sorted(h for h in hosts if h != host)
    if not others:
        raise StepFailed(f"the plan names no peer for {host}")
    return others[0]


def run_upgrade(
    journal: Journal, clock: Clock, plan: UpgradePlan, target: str, actions: UpgradeActions
) -> RunResult:
    run_id = f"upgrade-{clock.now().strftime('%Y%m%dT%H%M%S')}"
    hosts = [s.host for s in plan.steps]
    first, last = (hosts[0], hosts[-1]) if hosts else ("", "")
    return Runner(journal, clock).execute(
        run_id, "upgrade", first, last, steps_for(plan, target, actions)
    )
