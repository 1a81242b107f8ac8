"""The fault tests run scenarios the same way the workflow tests do."""

from tests.workflow.conftest import run_scenario

__all__ = ["run_scenario"]
