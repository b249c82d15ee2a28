"""The `[maintenance]` section: planned switch settings and scheduled maintenance windows.

```toml
[maintenance]
low_ttl = 30            # TTL of the owned records while a planned switch is under way
drain_timeout = 120     # seconds to wait for the old primary's queue to empty
converge_timeout = 60   # seconds to wait for every mailbox to match on both hosts
intent_expiry = 3600    # a planned move not carried out this long after its time is dropped

[maintenance.windows.sunday-patching]
host = "mx1.example.test"   # automatic failover away from this host is suppressed...
cron = "0 3 * * sun"        # ...from each start (5-field cron, UTC)...
duration = 7200             # ...for this many seconds
```
"""

from __future__ import annotations

from dataclasses import dataclass

from croniter import croniter

from orchestrator.config.fields import Reader, Table, join


@dataclass(frozen=True)
class WindowConfig:
    name: str
    host: str
    cron: str
    duration: float


@dataclass(frozen=True)
class MaintenanceConfig:
    low_ttl: int
    drain_timeout: float
    converge_timeout: float
    windows: tuple[WindowConfig, ...]
    # A planned move not carried out this many seconds after its time is dropped: a
    # switchover meant for 03:00 must not happen at 14:00 because the loop was busy.
    intent_expiry: float = 3600.0


def parse_maintenance(reader: Reader, raw: Table, path: str = "maintenance") -> MaintenanceConfig:
    reader.reject_unknown(
        raw, {"low_ttl", "drain_timeout", "converge_timeout", "windows", "intent_expiry"}, path
    )
    windows = []
    table = reader.table(raw, "windows", path, required=False)
    for name in table:
        where = join(join(path, "windows"), name)
        window = reader.table(table, name, join(path, "windows"))
        reader.reject_unknown(window, {"host", "cron", "duration"}, where)
        cron = reader.string(window, "cron", where)
        if cron and (len(cron.split()) != 5 or not croniter.is_valid(cron)):
            reader.problem(join(where, "cron"), f"{cron!r} is not a 5-field cron expression")
        windows.append(
            WindowConfig(
                name,
                reader.string(window, "host", where).rstrip(".").lower(),
                cron,
                reader.number(window, "duration", where, 3600.0, 60.0, 7 * 86400.0),
            )
        )
    return MaintenanceConfig(
        reader.integer(raw, "low_ttl", path, 30, 5, 3600),
        reader.number(raw, "drain_timeout", path, 120.0, 1.0, 3600.0),
        reader.number(raw, "converge_timeout", path, 60.0, 1.0, 3600.0),
        tuple(windows),
        reader.number(raw, "intent_expiry", path, 3600.0, 10.0, 7 * 86400.0),
    )
