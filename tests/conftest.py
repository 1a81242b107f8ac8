"""Fixtures more than one test folder uses; what they hand out lives in tests/support."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support import served_world
from tests.support.workflow import RunScenario, run

if TYPE_CHECKING:
    from local.engine import Engine


@pytest.fixture
def run_scenario() -> RunScenario:
    """Run one scenario on the embedded engine (the workflow and fault tests)."""
    return run


@pytest.fixture(scope="session")
def served() -> Iterator[tuple[str, Engine]]:
    """The session's one served endpoint and the engine behind it, for the modules marked
    served_world.SERVED (tests/support/served_world.py shares out its instances)."""
    serve = pytest.importorskip("local.serve")
    with serve.served(served_world.scenario()) as (url, engine):
        yield url, engine
