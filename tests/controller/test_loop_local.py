"""The loop itself, against hosts that refuse every connection (no lab needed).

Mail hosts at 127.0.0.2/127.0.0.3, where nothing listens on this machine (checked): every
probe is refused at once, SSH is refused, the DNS server does not answer. That is a real
world for the loop to read, and enough to show that a pending intent never stops a cycle
from probing and deciding, and that /health turns unhealthy when cycles keep raising.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from orchestrator.config import parse_config
from orchestrator.controller import switching
from orchestrator.controller.journal import Journal
from orchestrator.controller.loop import Controller

HOSTS = {"mx1.example.test": "127.0.0.2", "mx2.example.test": "127.0.0.3"}


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _config(tmp_path: Path, standby_observer: bool) -> str:
    key, known, secret = tmp_path / "id", tmp_path / "known_hosts", tmp_path / "pw"
    for f in (key, known, secret):
        f.write_text("x")
        f.chmod(0o600)
    return f"""
[dns]
provider = "rfc2136"
zones = ["example.test"]
[dns.rfc2136]
server = "127.0.0.4"
port = 5399
key_name = "k"
key_secret = "env:TSIG"
timeout = 0.5
[[dns.records]]
name = "example.test"
type = "MX"
[dns.mail_hosts]
"mx1.example.test" = ["{HOSTS["mx1.example.test"]}"]
"mx2.example.test" = ["{HOSTS["mx2.example.test"]}"]
[pair]
primary = "mx1.example.test"
standby = "mx2.example.test"
state_dir = "{tmp_path / "state"}"
[ssh]
key_file = "{key}"
known_hosts = "{known}"
port = 2
timeout = 1
[probes]
client_name = "mail.example.test"
probe_user = "probe@example.test"
probe_password = "file:{secret}"
timeout = 0.5
[policy]
interval = 1
standby_observer = {str(standby_observer).lower()}
"""


def _controller(tmp_path: Path, standby_observer: bool) -> Controller:
    for address in HOSTS.values():
        assert _refused(address, 25) and _refused(address, 993), f"{address} must refuse"
    environ = {"TSIG": "c2VjcmV0c2VjcmV0c2VjcmV0"}
    text = _config(tmp_path, standby_observer)
    config = parse_config(text, tmp_path / "mxctl.toml", environ)
    return Controller(config, Journal(tmp_path / "journal.db"))


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    """The controller as the only observer: it alone decides (no witness configured)."""
    return _controller(tmp_path, standby_observer=False)


def test_an_invalid_intent_is_dropped_and_the_cycle_still_probes_and_decides(
    controller: Controller,
) -> None:
    # As if requested before a failover made it pointless: mx1 already is the primary.
    intent = {"id": "i1", "kind": "switchover", "to": "mx1.example.test",
              "at": "2020-01-01T00:00:00+00:00", "expires": "2999-01-01T00:00:00+00:00",
              "allow_data_loss": False, "by": "ops"}  # fmt: skip
    controller.journal.put(switching.INTENT_KEY, json.dumps(intent))
    sentence = controller.cycle()
    assert "primary mx1.example.test failed" in sentence, sentence  # it probed and decided
    assert "planned move dropped" in sentence and "already the primary" in sentence
    assert switching.pending(controller.journal) is None
    assert switching.result(controller.journal, "i1") is not None
    second = controller.cycle()
    assert "2 of 3 cycles" in second, second  # the next cycle carries on counting
    assert controller.health()[0]


def test_status_shows_each_vote_and_why_an_observer_abstains(tmp_path: Path) -> None:
    controller = _controller(tmp_path, standby_observer=True)
    sentence = controller.cycle()
    # The standby cannot be asked, so the controller alone may not call mx1 dead.
    assert "only 1 of 2 observers see primary" in sentence, sentence
    status = controller.status()
    rows = {r["observer"]: r for r in status["observers"]}
    assert rows["controller"]["votes"]["mx1.example.test"] == "failed"
    assert "cannot ask the standby" in rows["standby:mx2"]["note"]
    assert status["dns"].startswith("unreadable")
    assert [a["key"] for a in status["alerts"]] == ["no-quorum"]


def test_health_turns_unhealthy_when_cycles_keep_raising(controller: Controller) -> None:
    controller.journal.close()  # every cycle now fails at its first journal read
    sentences = [controller.cycle() for _ in range(3)]
    assert all(s.startswith("unexpected error") for s in sentences)
    ok, why = controller.health()
    assert not ok and "last 3 cycles raised" in why
