"""The human view of a probe round: one line per probe, the failures saying why."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.probes.result import ProbeResult

# Per probe, the details worth a glance when it passes.
_SHOWN_WHEN_OK = {
    "smtp": ("banner_code", "tls_version", "cert_days_left"),
    "submission": ("auth_code", "cert_days_left"),
    "imaps": ("messages", "cert_days_left"),
    "imap-starttls": ("messages", "cert_days_left"),
    "host-state": (
        "postfix",
        "dovecot",
        "queue_size",
        "queue_oldest_age",
        "volume_free_percent",
        "replication_failed",
    ),
    "canary-delivery": ("mx", "delivery_latency_ms"),
    "canary-replication": ("replication_lag_ms",),
}


def _detail(result: ProbeResult) -> str:
    if not result.ok:
        return f"{result.error} at {result.step}: {result.message}"
    keys = _SHOWN_WHEN_OK.get(result.probe, ())
    return " ".join(f"{k}={result.details[k]}" for k in keys if k in result.details)


def render(results: Sequence[ProbeResult]) -> str:
    rows = [("host", "probe", "result", "latency", "detail")]
    for r in sorted(results, key=lambda r: (r.target, r.probe)):
        latency = f"{r.latency * 1000:.0f} ms"
        rows.append((r.target, r.probe, "ok" if r.ok else "FAILED", latency, _detail(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        cells[3] = row[3].rjust(widths[3])
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)
