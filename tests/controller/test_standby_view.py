"""Reading the standby's view of the primary from its probe script's output (a table)."""

from __future__ import annotations

import pytest

from orchestrator.controller.model import Health
from orchestrator.controller.standby_view import parse, probe_script, replication_path

CASES = [
    # (id, output, health, words in the note, replication path)
    ("both greet, path open", "smtp=220\nimaps=ok\nrepl=ok\n", Health.UP, "", True),
    ("frozen primary: TCP accepted, no greeting", "smtp=\nimaps=\nrepl=ok\n", Health.FAILED,
     "smtp, imaps did not greet", True),
    ("fenced primary: refused", "smtp=\nimaps=\nrepl=ok\n", Health.FAILED, "smtp", True),
    ("IMAPS only down", "smtp=220\nimaps=\nrepl=ok\n", Health.FAILED, "imaps did not greet",
     True),
    ("replication port cut", "smtp=220\nimaps=ok\nrepl=fail\n", Health.UP, "", False),
    ("no doveadm port configured", "smtp=220\nimaps=ok\n", Health.UP, "", None),
    ("a 4xx banner is no greeting", "smtp=421\nimaps=ok\n", Health.FAILED, "smtp", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "health", "note", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parse(output: str, health: Health, note: str, path: bool | None) -> None:
    got, why = parse(output)
    assert got is health and note in why
    assert replication_path(output) is path


def test_the_script_quotes_the_address_and_bounds_every_probe() -> None:
    script = probe_script("192.0.2.21", 1.0)
    assert script.count("timeout 1 ") == 3
    assert "/dev/tcp/'192.0.2.21'/25" in script and "192.0.2.21:993" in script
