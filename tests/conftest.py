"""Shared fixtures. The `lab` fixture brings the local lab up once per test session.

In CI (`make test` sets MXCTL_REQUIRE_LAB=1) a lab that cannot be built is a failure, never
a skip. With MXCTL_LAB_TEARDOWN=1 the lab is removed at the end of the session; the test
`tests/lab/test_zz_teardown.py` also checks that nothing was left behind and runs last.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from mxlab import acmehost
from mxlab import lab as lab_module
from mxlab.state import LabState

REQUIRE_LAB = os.environ.get("MXCTL_REQUIRE_LAB") == "1" or bool(os.environ.get("CI"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that tear the lab down must run after every test that uses it.
    last = [i for i in items if i.get_closest_marker("lab_teardown")]
    items[:] = [i for i in items if not i.get_closest_marker("lab_teardown")] + last


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab_teardown: removes the lab; runs after all others")


@pytest.fixture(scope="session")
def lab() -> Iterator[LabState]:
    if os.geteuid() != 0:
        message = "the lab needs root: run the suite as root (`make test`)"
        if REQUIRE_LAB:
            pytest.fail(message)
        pytest.skip(message)
    if not lab_module.is_up() and (
        lab_module.lab_json_path().exists() or lab_module.network.lab_namespaces()
    ):
        lab_module.down()  # a lab half left by an interrupted run
    state = lab_module.up()
    # The suite deploys the lab inventory's own certificates (lab CA, 397 days), which
    # several tests check: `make demo` leaves the lab deploying the ones it had Pebble
    # issue into the lab's store; forget those.
    shutil.rmtree(acmehost.store_dir(), ignore_errors=True)
    yield state
    if os.environ.get("MXCTL_LAB_TEARDOWN") == "1" and lab_module.is_up():
        lab_module.down()
