"""The Task states a run passes through, read from the ASL file itself, so that a new state is
covered by the fault tests without editing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "reset_access.asl.json"
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
    asl = json.loads(ASL.read_text())
    tasks = _tasks_from(asl["States"], "Route", {})
    return [t for t in tasks if t not in FAILURE_PATH]


def online_tasks() -> list[str]:
    """Every Task after Preflight on the online path (Route sends the run to Run Command)."""
    asl = json.loads(ASL.read_text())
    route = asl["States"]["Route"]
    online = next(c["Next"] for c in route["Choices"]
                  if c.get("Variable") == "$.plan.Mode" and c.get("StringEquals") == "online")
    tasks = _tasks_from(asl["States"], online, {})
    return [t for t in tasks if t not in FAILURE_PATH]
