"""The failover's steps, in order: hooks, check the standby, fence, rewrite DNS, verify.

Each step is idempotent so the runner may repeat it after a crash: fencing twice is
fencing; the DNS rewrite is a plan rebuilt from what the provider serves now, applied by
compare-and-swap, so a change already made is "already" the second time; verification
only reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import httpx

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.hookenv import hook_environment
from orchestrator.controller.observe import probe_settings
from orchestrator.controller.runner import Evidence, Step, StepFailed
from orchestrator.controller.zones import apply_all_zones
from orchestrator.dns.factory import make_provider, make_verifier
from orchestrator.dns.plan import build_plan, desired_rrsets
from orchestrator.dns.provider import BaseProvider
from orchestrator.dns.retry import RetryPolicy
from orchestrator.errors import MxctlError
from orchestrator.probes.services import probe_service
from orchestrator.remote import SshTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Move:
    kind: str  # failover | switchover | switchback
    old_primary: str  # fqdn
    new_primary: str
    reason: str
    allow_unfenced: bool = True  # an unreachable old primary cannot be fenced now


def ssh_target(config: MxctlConfig, fqdn: str) -> SshTarget:
    found = config.dns.mail_host(fqdn)
    address = next(iter(found[1]), "") if found else ""
    ssh = config.ssh
    return ssh.to(fqdn, address)


def run_hooks(commands: tuple[tuple[str, ...], ...], move: Move, timeout: float) -> Evidence:
    # A clean environment: the controller's holds resolved `env:` secrets.
    env = hook_environment(move.kind, move.old_primary, move.new_primary, move.reason, os.environ)
    ran: list[dict[str, Any]] = []
    for argv in commands:
        try:
            proc = subprocess.run(
                list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StepFailed(f"hook {argv[0]} could not run: {exc}", {"hooks": ran}) from None
        ran.append({"argv": list(argv), "exit": proc.returncode, "output": proc.stdout[-500:]})
        if proc.returncode != 0:
            raise StepFailed(
                f"hook {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-200:]}",
                {"hooks": ran},
            )
    return {"hooks": ran}


def notify(
    webhooks: tuple[str, ...], move: Move, timeout: float, summary: dict[str, Any]
) -> Evidence:
    delivered, failed = [], []
    payload = {
        "event": move.kind,
        "from": move.old_primary,
        "to": move.new_primary,
        "reason": move.reason,
        **summary,
    }
    for url in webhooks:
        try:
            httpx.post(url, json=payload, timeout=timeout).raise_for_status()
            delivered.append(url)
        except httpx.HTTPError as exc:
            failed.append(f"{url}: {exc}")
    if failed:
        raise StepFailed(
            f"{len(failed)} webhook(s) failed: {'; '.join(failed)}", {"sent": delivered}
        )
    return {"sent": delivered}


class FailoverSteps:
    """Builds the step list for one move; the provider is made lazily, once per run."""

    def __init__(self, config: MxctlConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._provider: BaseProvider | None = None

    def provider(self) -> BaseProvider:
        if self._provider is None:
            # Every provider call of a failover, reads included, is bounded by its deadline.
            budget = self.config.policy.failover_deadline
            policy = RetryPolicy(clock=self.clock, default_budget=budget)
            self._provider = make_provider(self.config.dns, self.clock, policy)
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()

    def deadline(self) -> float:
        return self.clock.monotonic() + self.config.policy.failover_deadline

    def steps(self, move: Move) -> list[Step]:
        c = self.config
        return [
            Step(
                "pre-hooks",
                lambda: run_hooks(c.hooks.pre_failover, move, c.hooks.timeout),
                "pre-failover hooks must all succeed",
            ),
            # The standby is checked before the old primary is fenced: a standby that
            # cannot take mail must not leave the pair with no host taking it.
            Step(
                "check-new-primary",
                lambda: self.check_new_primary(move),
                f"{move.new_primary} must accept mail before anything moves to it",
            ),
            Step(
                "fence-old-primary",
                lambda: self.fence(move),
                f"{move.old_primary} must not serve mail clients while {move.new_primary} does",
            ),
            Step(
                "rewrite-dns",
                lambda: self.rewrite_dns(move),
                f"MX and client names must point at {move.new_primary} (compare-and-swap)",
            ),
            Step(
                "verify-dns",
                lambda: self.verify_dns(move),
                "every authoritative server must serve the new records",
            ),
            Step(
                "post-hooks",
                lambda: run_hooks(c.hooks.post_failover, move, c.hooks.timeout),
                "post-failover hooks",
                abort_on_failure=False,
            ),
            Step(
                "notify",
                lambda: notify(c.notify.webhooks, move, c.notify.timeout, {}),
                "tell the humans",
                abort_on_failure=False,
            ),
        ]

    def fence(self, move: Move) -> Evidence:
        target = ssh_target(self.config, move.old_primary)
        try:
            result = fencing.fence(
                target, f"{move.kind} to {move.new_primary}: {move.reason}", self.config.ssh.timeout
            )
        except fencing.FenceFailed as failed:
            return self.wait_out_guard(move, failed)
        if not result.fenced and not move.allow_unfenced:
            raise StepFailed(f"could not fence {move.old_primary}: {result.detail}")
        # Unreachable: DNS moves away from it now; the loop fences it when it comes back.
        return {"host": move.old_primary, "fenced": result.fenced, "detail": result.detail}

    def wait_out_guard(self, move: Move, failed: fencing.FenceFailed) -> Evidence:
        """The old primary answers SSH but the fence script failed on it. Its own guard
        stands in for the fence (Pacemaker's watchdog fencing): only a confirmation from
        DNS renews its opening, so once its lease has passed, whatever opening it held on
        its own lapsed unless DNS, which still names it, confirmed it again; from the
        rewrite on DNS never does. Without a guard nothing closes the host on its own:
        the failover stops, as it must not leave two hosts taking mail as primary."""
        old, new = move.old_primary, move.new_primary
        evidence: Evidence = {"host": old, "fenced": False, "detail": failed.detail}
        if failed.guard is None or not move.allow_unfenced:
            why = (
                failed.guard_problem
                if failed.guard is None
                else f"a {move.kind} fences for real, its guard does not stand in"
            )
            raise StepFailed(
                f"could not fence {old}: {failed.detail}; {why}: nothing else closes it, so "
                f"mail does not move to {new} (fence or power {old} off by hand, then the "
                "next attempt goes on)",
                evidence,
            )
        wait = failed.guard.wait
        log.warning("could not fence %s (%s): waiting %.0f s for its guard's lease (%g s) "
                    "to pass instead", old, failed.detail, wait, failed.guard.lease)  # fmt: skip
        self.clock.sleep(wait)
        return {
            **evidence,
            "fenced_by_guard": True,
            "guard_lease_s": failed.guard.lease,
            "waited_s": wait,
            "evidence": (
                f"the fence script failed on {old} ({failed.detail}); its guard (lease "
                f"{failed.guard.lease:g} s, a round every {failed.guard.interval:g} s) renews "
                f"its opening only when DNS confirms it primary: waited {wait:g} s (the lease, "
                f"one round, 1 s) so that an opening it held without that confirmation has "
                f"lapsed before DNS moves to {new}"
            ),
        }

    def check_new_primary(self, move: Move) -> Evidence:
        target = ssh_target(self.config, move.new_primary)
        try:
            if fencing.is_fenced(target, self.config.ssh.timeout):
                fencing.unfence(target, self.config.ssh.timeout)
        except MxctlError as exc:
            raise StepFailed(f"cannot reach {move.new_primary} over SSH: {exc}") from None
        settings = probe_settings(
            self.config.probes, self.config.dns, self.config.ssh, move.new_primary, move.old_primary
        )
        host = settings.hosts[0]
        result = asyncio.run(probe_service("smtp", settings, host, self.clock))
        if not result.ok:
            raise StepFailed(
                f"{move.new_primary} does not accept SMTP: {result.summary()}",
                {"probe": result.to_json()},
            )
        return {"probe": result.to_json()}

    def rewrite_dns(self, move: Move) -> Evidence:
        provider = self.provider()
        plan = build_plan(self.config.dns, provider, move.new_primary)
        before = provider.requests
        # A failure here leaves every zone as it was (swapped back), so the caller may
        # treat "rewrite-dns failed" as "DNS still points at the old primary".
        undo_budget_s = min(30.0, self.config.policy.failover_deadline)
        writes = apply_all_zones(plan, self.config.dns, provider, self.deadline(), undo_budget_s)
        return {
            "plan": plan.to_json(),
            **writes.to_json(),
            "requests": provider.requests - before,
        }

    def verify_dns(self, move: Move) -> Evidence:
        verifier = make_verifier(self.config.dns, self.provider(), self.clock)
        report = verifier.wait(desired_rrsets(self.config.dns, move.new_primary), self.deadline())
        if not report.ok:
            raise StepFailed(
                f"authoritative servers disagree at the deadline: {report.summary()}",
                report.to_json(),
            )
        return report.to_json()
