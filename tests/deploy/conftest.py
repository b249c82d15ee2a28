"""Fixtures for the deploy tests: a valid inventory on disk, and the deployed lab pair."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from mxlab import dkimdns as labdns
from mxlab import inventory as labinv
from mxlab.deploying import LAB_DEPLOY, LAB_INVENTORY
from mxlab.mailclient import tls_context
from mxlab.state import LabState

from orchestrator.deploy import dkim, runner
from orchestrator.deploy.spec import MailPair
from tests.deploy.factories import valid_inventory

LAB_DEPLOYS = LAB_DEPLOY  # one pyinfra run: the mail pair and the outside MTA


@pytest.fixture(scope="session")
def _inventory_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    # Generating RSA/EC keys is the slow part: once per session, copied per test.
    return valid_inventory(tmp_path_factory.mktemp("inventory"))


@pytest.fixture
def inventory(_inventory_template: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return copy.deepcopy(_inventory_template)


@dataclass(frozen=True)
class DeployedLab:
    lab: LabState
    pair: MailPair
    first: runner.RunResult  # this session's first run (from bare on a fresh lab)
    second: runner.RunResult  # the same deploy again: must change nothing
    context: ssl.SSLContext  # verifies against the lab CA

    def password(self, address: str) -> str:
        return next(u.password.reveal() for u in self.pair.users if u.address == address)

    def address(self, host: str) -> str:
        return self.lab.host(host).address


@pytest.fixture(scope="session")
def deployed(lab: LabState) -> Iterator[DeployedLab]:
    """Deploy the pair and the sender (a no-op when already deployed), then once more."""
    first = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOYS)
    assert first.ok, f"first deploy failed: {first.failed()}\n{first.stderr[-3000:]}"
    if first.looks_like_bare_install(("mx1", "mx2")):
        labinv.record_first_deploy(
            first.seconds, len(first.operations), sum(len(o.changed) for o in first.operations)
        )
    second = runner.run_deploy(LAB_INVENTORY, LAB_DEPLOYS)
    pair = runner.preflight(LAB_INVENTORY)
    labdns.publish(lab, dkim.records(pair.dkim_selector, pair.domains, pair.dkim_key.reveal()))
    yield DeployedLab(lab, pair, first, second, tls_context(lab.ca_cert))
