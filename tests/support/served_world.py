"""The one served endpoint of a test session (`local.serve.served`): one world whose instances
are shared out by name, each module resetting only its own, so that starting the stack's twin
behind moto's server (seconds each) happens once and not once per module and worker.

The modules that use it carry `pytestmark = SERVED` (pytest-xdist's group, `--dist loadgroup`
in pyproject.toml): their tests run on one worker, so one endpoint serves them all."""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Any

import pytest

from local.scenario import Scenario
from tests.support.workflow import linux_instance

if TYPE_CHECKING:
    from local.engine import Engine

SERVED = pytest.mark.xdist_group("served")
_running: list[tuple[contextlib.ExitStack, tuple[str, Engine]]] = []

# tests/local/test_serve.py: the lost-key scenario's instance (local/scenarios/lost-key-linux.json).
SERVE_INSTANCE = "web"
# tests/cli/test_served.py and test_served_failure.py: one instance each.
CLI_INSTANCE = "cli"
FAILING_INSTANCE = "failing"
# tests/cli/test_fleet_served.py: found by their Team tag, which no other instance has.
FLEET_WEB = ("web0", "web1", "web2")


def scenario() -> Scenario:
    instances: dict[str, Any] = {
        SERVE_INSTANCE: linux_instance(),
        CLI_INSTANCE: linux_instance(),
        FAILING_INSTANCE: linux_instance(),
    }
    instances |= {name: linux_instance(tags={"Team": "web"}) for name in FLEET_WEB}
    instances["web2"]["ssm"] = True  # reset online, in the same fleet
    instances["db"] = linux_instance(tags={"Team": "db"})
    # Fails on its own: no Retry absorbs UnexpectedState once the instance is stopped.
    instances["bad"] = linux_instance(tags={"Team": "bad"})
    faults = [
        {
            "state": "DetachRootVolume",
            "when": "before",
            "error": "UnexpectedState",
            "instance": "bad",
        }
    ]
    return Scenario.from_dict(
        {"instances": copy.deepcopy(instances), "input": {}, "faults": faults}
    )


def is_served(item: pytest.Item) -> bool:
    return any(
        mark.kwargs.get("name", mark.args[:1] and mark.args[0]) == "served"
        for mark in item.iter_markers("xdist_group")
    )


def endpoint() -> tuple[str, Engine]:
    """The running endpoint, started at the first call after a close."""
    if not _running:
        from local import serve

        stack = contextlib.ExitStack()
        _running.append((stack, stack.enter_context(serve.served(scenario()))))
    return _running[0][1]


def close() -> None:
    """Stop the endpoint and its moto mock, if it runs."""
    while _running:
        stack, _ = _running.pop()
        stack.close()
