"""Fixtures more than one test folder uses; what they hand out lives in tests/support."""

from __future__ import annotations

import pytest

from tests.support.workflow import RunScenario, run


@pytest.fixture
def run_scenario() -> RunScenario:
    """Run one scenario on the embedded engine (the workflow and fault tests)."""
    return run
