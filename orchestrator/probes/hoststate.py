"""Host state read over SSH: replication, Postfix queue, mail volume, daemons. Pure parsers.

Replication is Dovecot 2.3's replicator or, on Dovecot 2.4, mxctl-dsync, which reports in
the replicator's format: the same parser reads both.

One SSH command runs a small script whose output has one section per fact (`### name`,
the command's output, `### rc name N`), so a round costs one channel per host. The parsers
here take that captured text and never touch the network, so they are tested on real
output captured from the lab hosts.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.deploy.hostfiles import REPLICATION_STATUS, REPLICATION_USERS
from orchestrator.probes.settings import HostLimits

SECTIONS = ("replicator", "replicator-users", "postqueue", "volume", "daemons")


def state_script(mail_volume: str, command_timeout: float = 2.0) -> str:
    """The shell script the host-state probe runs (POSIX sh, read-only commands).

    The commands run side by side, each under `timeout`, and their outputs are printed in
    a fixed order: with Dovecot stopped (SIGSTOP) doveadm would hang, and the probe must
    still say which daemon is stopped; a slow command (postqueue starts Postfix's showq on
    demand) must not eat the others' time.
    """
    volume = shlex.quote(mail_volume)
    limit = f"timeout -s KILL {max(0.5, command_timeout):g}"
    # pidof: what runs, whatever the init system; ps: whether it is stopped (state T).
    daemon = 'p=$(pidof -s {proc}); echo "{name} ${{p:--}} $(ps -o stat= -p ${{p:-1}})"'
    commands = {
        "daemons": "; ".join(
            daemon.format(proc=proc, name=name)
            for proc, name in (("master", "postfix"), ("dovecot", "dovecot"))
        ),
        # Dovecot 2.3's replicator, or mxctl-dsync on 2.4 (which reports in its format).
        "replicator": f"{limit} sh -c {shlex.quote(REPLICATION_STATUS)}",
        "replicator-users": f"{limit} sh -c {shlex.quote(REPLICATION_USERS)}",
        "postqueue": f"{limit} postqueue -j",
        "volume": f"{limit} df -P -B1 {volume}",
    }
    lines = ["d=$(mktemp -d) || exit 1"]
    for name, command in commands.items():
        lines.append(f'( {{ {command}; }} >"$d/{name}" 2>&1; echo $? >"$d/{name}.rc" ) &')
    lines.append("wait")
    for name in commands:
        lines.append(
            f'echo "### {name}"; cat "$d/{name}"; echo "### rc {name} $(cat "$d/{name}.rc")"'
        )
    lines.append('rm -rf "$d"')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Section:
    text: str
    rc: int


def split_sections(output: str) -> dict[str, Section]:
    sections: dict[str, Section] = {}
    name: str | None = None
    body: list[str] = []
    for line in output.splitlines():
        if line.startswith("### rc ") and name is not None:
            _, _, rest = line.partition("### rc ")
            rc_name, _, rc = rest.rpartition(" ")
            if rc_name == name and rc.lstrip("-").isdigit():
                sections[name] = Section("\n".join(body), int(rc))
            name, body = None, []
        elif line.startswith("### "):
            name, body = line[4:].strip(), []
        elif name is not None:
            body.append(line)
    return sections


@dataclass(frozen=True)
class ReplicatorState:
    queued: dict[str, int]  # "Queued 'sync' requests" -> 0, ...
    users: int  # users the replicator knows
    failed_users: tuple[str, ...]  # users whose last sync failed
    oldest_success_age: float | None  # seconds since the stalest user's last good sync

    @property
    def waiting_failed(self) -> int:
        return self.queued.get("Waiting 'failed' requests", 0)


def hms_seconds(text: str) -> float | None:
    """doveadm's "HH:MM:SS" ages ("-": never) as seconds."""
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    hours, minutes, seconds = (int(p) for p in parts)
    return float(hours * 3600 + minutes * 60 + seconds)


def parse_replicator(summary: str, users_table: str) -> ReplicatorState:
    queued: dict[str, int] = {}
    for line in summary.splitlines():
        key, _, value = line.rstrip().rpartition("\t" if "\t" in line else " ")
        if key.strip() and value.isdigit():
            queued[key.strip()] = int(value)
    rows = [line.split("\t") for line in users_table.splitlines() if line.strip()]
    failed: list[str] = []
    success_ages: list[float] = []
    known = 0
    if rows:
        header = [h.strip().lower() for h in rows[0]]
        user_col = header.index("username") if "username" in header else 0
        failed_col = header.index("failed") if "failed" in header else len(header) - 1
        success_col = header.index("success sync") if "success sync" in header else None
        for row in rows[1:]:
            if len(row) != len(header):
                continue
            known += 1
            if row[failed_col].strip() not in ("", "-", "n", "no"):
                failed.append(row[user_col].strip())
            age = hms_seconds(row[success_col]) if success_col is not None else None
            if age is not None:
                success_ages.append(age)
    users = queued.get("Total number of known users", known)
    return ReplicatorState(
        queued=queued,
        users=users,
        failed_users=tuple(failed),
        oldest_success_age=max(success_ages) if success_ages else None,
    )


@dataclass(frozen=True)
class QueueState:
    size: int
    oldest_age: float  # seconds; 0 when the queue is empty
    deferred: int


def parse_postqueue(text: str, now: datetime) -> QueueState:
    """`postqueue -j`: one JSON object per queued message (empty output: empty queue)."""
    arrivals: list[float] = []
    deferred = 0
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue  # "postqueue: warning: ..." lines carry no message
        entry = json.loads(line)
        arrivals.append(float(entry.get("arrival_time", now.timestamp())))
        deferred += entry.get("queue_name") == "deferred"
    oldest = max(0.0, now.timestamp() - min(arrivals)) if arrivals else 0.0
    return QueueState(size=len(arrivals), oldest_age=oldest, deferred=deferred)


@dataclass(frozen=True)
class VolumeSpace:
    mount: str
    total: int  # bytes
    free: int  # bytes available to unprivileged writers

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total else 0.0


def parse_df(text: str) -> VolumeSpace:
    """`df -P -B1 PATH`: a header, then `fs total used available capacity mount`."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"df printed no filesystem line: {text.strip()[:200]!r}")
    fields = lines[-1].split()
    if len(fields) < 6 or not (fields[1].isdigit() and fields[3].isdigit()):
        raise ValueError(f"unexpected df line: {lines[-1][:200]!r}")
    return VolumeSpace(mount=fields[5], total=int(fields[1]), free=int(fields[3]))


def parse_daemons(text: str) -> dict[str, str]:
    """name -> "running", "stopped" (SIGSTOP, state T) or "absent"."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        pid = fields[1] if len(fields) > 1 else "-"
        stat = fields[2] if len(fields) > 2 else ""
        if not pid.isdigit():
            states[fields[0]] = "absent"
        else:
            states[fields[0]] = "stopped" if stat.startswith("T") else "running"
    return states


@dataclass(frozen=True)
class HostState:
    replicator: ReplicatorState | None
    queue: QueueState | None
    volume: VolumeSpace | None
    daemons: dict[str, str]  # name -> running | stopped | absent
    unreadable: dict[str, str] = field(default_factory=dict)  # section -> why

    def problems(self, limits: HostLimits) -> list[str]:
        found = [
            f"{name} is not running" if state == "absent" else f"{name} is stopped (SIGSTOP)"
            for name, state in self.daemons.items()
            if state != "running"
        ]
        found += [f"cannot read {name}: {why}" for name, why in self.unreadable.items()]
        if self.replicator and self.replicator.failed_users:
            users = ", ".join(self.replicator.failed_users)
            found.append(f"replication failing for {users}")
        if self.queue and self.queue.oldest_age > limits.max_queue_age:
            found.append(f"oldest queued message waiting {self.queue.oldest_age:.0f} s")
        if self.queue and self.queue.size > limits.max_queue_size:
            found.append(f"{self.queue.size} messages queued")
        if self.volume and self.volume.free_percent < limits.min_free_percent:
            found.append(f"{self.volume.mount} has {self.volume.free_percent:.1f}% free")
        return found


def parse_host_state(output: str, now: datetime) -> HostState:
    """Every fact the script's output yields; a section that failed is named, not fatal."""
    sections = split_sections(output)
    unreadable: dict[str, str] = {}

    def text_of(name: str) -> str | None:
        section = sections.get(name)
        if section is None:
            unreadable[name] = "no output (the command did not run to the end)"
            return None
        if section.rc in (124, 137):  # killed by `timeout`
            unreadable[name] = "no answer within the command's time limit (hung daemon?)"
            return None
        if section.rc != 0:
            unreadable[name] = f"exit {section.rc}: {section.text.strip()[:200]}"
            return None
        return section.text

    replicator = queue = volume = None
    summary, users = text_of("replicator"), text_of("replicator-users")
    if summary is not None and users is not None:
        replicator = parse_replicator(summary, users)
    queue_text = text_of("postqueue")
    try:
        queue = parse_postqueue(queue_text, now) if queue_text is not None else None
    except ValueError as exc:
        unreadable["postqueue"] = str(exc)
    volume_text = text_of("volume")
    try:
        volume = parse_df(volume_text) if volume_text is not None else None
    except ValueError as exc:
        unreadable["volume"] = str(exc)
    daemons_text = text_of("daemons")
    daemons = parse_daemons(daemons_text) if daemons_text is not None else {}
    return HostState(replicator, queue, volume, daemons, unreadable)
