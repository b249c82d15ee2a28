"""Upkeep of fenced hosts and of DNS, as the reconciliation asked: fence, unfence, repair,
and drain a fenced old primary's queue into the new primary. Every action is journaled
(what, why, evidence); a host that cannot be reached is tried again next cycle.
"""

from __future__ import annotations

import logging
from datetime import datetime

from orchestrator.clock import Clock
from orchestrator.config.loader import MxctlConfig
from orchestrator.controller import fencing
from orchestrator.controller.failover import ssh_target
from orchestrator.controller.journal import Journal
from orchestrator.controller.mailboxes import UNSTICK_COMMAND
from orchestrator.controller.reconcile import Reconciliation
from orchestrator.controller.zones import apply_all_zones
from orchestrator.dns.plan import build_plan
from orchestrator.dns.provider import BaseProvider
from orchestrator.errors import MxctlError
from orchestrator.remote import run_remote

log = logging.getLogger(__name__)
DRAIN_EVERY = 10.0
RESYNC = UNSTICK_COMMAND
DRAIN_SCRIPT = f"postqueue -f; {RESYNC} >/dev/null; postqueue -j | wc -l"


class Upkeep:
    def __init__(self, config: MxctlConfig, journal: Journal, clock: Clock) -> None:
        self.config, self.journal, self.clock = config, journal, clock
        self._drained: dict[str, float] = {}

    def _record(self, subject: str, status: str, reason: str, evidence: dict[str, object]) -> None:
        self.journal.record(self.clock.now(), "decision", subject, status, reason, evidence)

    def apply(
        self, fix: Reconciliation, provider: BaseProvider, evidence: dict[str, object]
    ) -> dict[str, str]:
        """Carry out the reconciliation; returns alert-class problems it could not fix."""
        problems: dict[str, str] = {}
        timeout = self.config.ssh.timeout
        for note in fix.notes:
            log.warning("reconcile: %s", note)
        for host in fix.fence:
            try:
                result = fencing.fence(ssh_target(self.config, host),
                                       "re-fenced: seen serving while fenced", timeout)  # fmt: skip
            except MxctlError as exc:
                result = fencing.FenceResult(host, False, str(exc))
            status = "fence" if result.fenced else "failed"
            why = f"{host} is in the fenced set but served clients or lost its fence: " + (
                "fenced again" if result.fenced else f"could not fence it: {result.detail}"
            )
            self._record("re-fence", status, why, {**evidence, "detail": result.detail})
            if not result.fenced:
                problems["fenced-host-serving"] = why
        for host in fix.unfence:
            try:
                fencing.unfence(ssh_target(self.config, host), timeout)
                self._record("unfence", "unfence", f"{host} is fenced but DNS points at it: "
                             "unfenced (the host mail goes to must take it)", evidence)  # fmt: skip
            except MxctlError as exc:
                problems["primary-fenced"] = f"{host} is fenced, DNS points at it: {exc}"
        if fix.repair_dns_to is not None:
            host = fix.repair_dns_to
            try:
                plan = build_plan(self.config.dns, provider, host)
                deadline = self.clock.monotonic() + self.config.policy.failover_deadline
                writes = apply_all_zones(plan, self.config.dns, provider, deadline, 30.0)
                self._record("repair-dns", "rewrite", f"owned records were split between the "
                             f"hosts: compare-and-swapped back to {host}",
                             {**evidence, **writes.to_json()})  # fmt: skip
            except MxctlError as exc:
                problems["dns-split"] = f"owned records split between hosts; repair failed: {exc}"
        if fix.set_backup is not None:
            problems.update(self._set_backup(fix.state.primary, fix.set_backup[0], provider))
        return problems

    def _set_backup(
        self, primary: str, backup: str | None, provider: BaseProvider
    ) -> dict[str, str]:
        """List `backup` as the lower-priority MX (or no backup), by compare-and-swap."""
        try:
            plan = build_plan(self.config.dns, provider, primary, backup=backup)
            deadline = self.clock.monotonic() + self.config.policy.failover_deadline
            writes = apply_all_zones(plan, self.config.dns, provider, deadline, 30.0)
        except MxctlError as exc:
            return {"backup-mx": f"could not rewrite the MX set (backup {backup}): {exc}"}
        why = f"{backup} listed as backup MX" if backup else "backup MX withdrawn"
        self._record("backup-mx", "rewrite", why, {"primary": primary, "backup": backup,
                                                   **writes.to_json()})  # fmt: skip
        return {}

    def drain_fenced(self, fenced: frozenset[str], primary: str, now: datetime) -> None:
        """Mail a fenced old primary accepted before it failed must reach the new primary.

        When the old primary is back (reachable over SSH), flush its Postfix queue into
        its own Dovecot (LMTP is local, not fenced) and ask both replicators to sync now:
        after a refused peer Dovecot 2.3 otherwise waits a hard-coded 300 s before
        retrying. Rate-limited: an SSH round per fenced host every DRAIN_EVERY seconds.
        """
        mono = self.clock.monotonic()
        for host in sorted(fenced):
            if mono - self._drained.get(host, -DRAIN_EVERY) < DRAIN_EVERY:
                continue
            self._drained[host] = mono
            try:
                out = run_remote(ssh_target(self.config, host), DRAIN_SCRIPT, 5).stdout.split()
                run_remote(ssh_target(self.config, primary), RESYNC, 5)
            except MxctlError:
                continue  # still down: try again later
            queued = int(out[-1]) if out and out[-1].isdigit() else 0
            if queued:
                self.journal.record(
                    now,
                    "decision",
                    "drain-fenced",
                    "resync",
                    f"{host} had {queued} queued message(s): flushed into its "
                    "mailboxes and replicated to the primary",
                    {"queued": queued},
                )
                # Look again soon: the flush may have left some deferred for a moment.
                self._drained[host] = mono - DRAIN_EVERY + 2
