"""The Task states a run passes through, read from the workflow definition itself
(statemachine/definition.py), so that a new state is covered by the fault tests without editing
them."""

from __future__ import annotations

from typing import Any

from statemachine.definition import definition

FAILURE_PATH = ("Rollback", "CleanUpAfterFailure", "RecordFailure")


def _tasks_from(states: dict[str, Any], start: str, choices: dict[str, str]) -> list[str]:
    found: list[str] = []
    name: str | None = start
    while name:
        state = states[name]
        if state["Type"] == "Task":
            found.append(name)
        elif state["Type"] == "Parallel":
            for branch in state["Branches"]:
                found += _tasks_from(branch["States"], branch["StartAt"], choices)
        if state["Type"] == "Choice":
            name = choices.get(name, state.get("Default"))
            continue
        name = None if state.get("End") else state.get("Next")
    return found


def offline_linux_tasks() -> list[str]:
    """Every Task after Preflight on the helper path of a Linux instance (Choice defaults:
    Route goes to the helper path, no password AMI for Linux)."""
    asl = definition()
    tasks = _tasks_from(asl["States"], "Route", {})
    return [t for t in tasks if t not in FAILURE_PATH]


def mode_tasks(mode: str) -> list[str]:
    """Every Task after Preflight on the path Route takes for this plan Mode."""
    asl = definition()
    route = asl["States"]["Route"]
    start = next(
        c["Next"]
        for c in route["Choices"]
        if c.get("Variable") == "$.plan.Mode" and c.get("StringEquals") == mode
    )
    tasks = _tasks_from(asl["States"], start, {})
    return [t for t in tasks if t not in FAILURE_PATH]


def online_tasks() -> list[str]:
    """Every Task after Preflight on the online path (Route sends the run to Run Command)."""
    return mode_tasks("online")


def replace_root_tasks() -> list[str]:
    """Every Task after Preflight on the replace-root path."""
    return mode_tasks("replace-root")
