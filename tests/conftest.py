"""Fixtures more than one test folder uses; what they hand out lives in tests/support."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import served_world
from tests.support.workflow import Run, RunScenario, run

if TYPE_CHECKING:
    from local.engine import Engine


@pytest.fixture
def run_scenario() -> RunScenario:
    """Run one scenario on the embedded engine (the workflow and fault tests)."""
    return run


@pytest.fixture(scope="session")
def linux_reset() -> Run:
    """One run of the default scenario (a running Linux instance, reset offline with the
    default input), shared by the tests that only read what it did: once per worker."""
    return run()


@pytest.fixture(scope="module")
def served() -> tuple[str, Engine]:
    """The served endpoint and the engine behind it, for the modules marked
    served_world.SERVED (tests/support/served_world.py shares out its instances): started by
    the first of them, closed after the last (pytest_runtest_teardown below)."""
    pytest.importorskip("local.serve")
    return served_world.endpoint()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # The endpoint's moto mock patches the whole process: while it runs, every other test's
    # mock_aws would nest in it and share its accounts (no reset). So it closes as soon as the
    # served group's tests are done on this worker (`--dist loadgroup` runs them together).
    if served_world.is_served(item) and (nextitem is None or not served_world.is_served(nextitem)):
        served_world.close()


# Folders whose tests run whole workflows (seconds each, up to half a minute): scheduled first,
# so that with two workers the last minutes are quick tests on both, not one long one on one.
RUNS_FIRST = ("faults", "fleet", "workflow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def folder(item: pytest.Item) -> str:
        parts = item.nodeid.split("/")
        return parts[1] if len(parts) > 2 and parts[0] == "tests" else ""

    items.sort(key=lambda item: folder(item) not in RUNS_FIRST)
