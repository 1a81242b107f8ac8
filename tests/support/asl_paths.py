"""The Task states a run passes through, read from the workflow definition itself
(statemachine/definition.py), so that a new state is covered by the fault tests without editing
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from statemachine.definition import definition
from statemachine.phases import Phase, by_name

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


# -- the fault points that differ ------------------------------------------------------------
# A fault "before" a Task B that directly follows Task A (A's Next, same branch, same Catch)
# meets the world a fault "after" A meets: nothing runs between A's return and B's side effect,
# and the failure path reads only the plan, the error and EC2 (Rollback and CleanUpAfterFailure
# take `$.plan`, RecordFailure the error), never what A handed B. Only the named state differs,
# and every kept case asserts that naming.


@dataclass(frozen=True)
class Step:
    """A Task on a path: its phase function, and the Task it directly follows with the same
    Catch (None where a Parallel, a Choice or a Pass comes between, or it starts a branch)."""

    state: str
    phase: Phase
    follows: str | None
    in_parallel: bool


def _phase_of(task: dict[str, Any]) -> Phase:
    return by_name(str(task["Resource"])[2:-1].removesuffix("FunctionArn"))


def _steps_from(states: dict[str, Any], start: str, in_parallel: bool) -> list[Step]:
    found: list[Step] = []
    previous: dict[str, Any] | None = None
    previous_name: str | None = None
    name: str | None = start
    while name:
        state = states[name]
        if state["Type"] == "Task":
            follows = (
                previous_name
                if previous is not None and previous.get("Catch") == state.get("Catch")
                else None
            )
            found.append(Step(name, _phase_of(state), follows, in_parallel))
            previous, previous_name = state, name
        else:
            previous = previous_name = None
            for branch in state.get("Branches", ()):
                found += _steps_from(branch["States"], branch["StartAt"], True)
        if state["Type"] == "Choice":
            name = state.get("Default")
            continue
        name = None if state.get("End") else state.get("Next")
    return found


def steps(start: str = "Route") -> list[Step]:
    """The Tasks after Preflight from `start` (Route: the helper path of a Linux instance, as
    offline_linux_tasks), failure path left out."""
    return [
        s for s in _steps_from(definition()["States"], start, False) if s.state not in FAILURE_PATH
    ]


def mode_steps(mode: str) -> list[Step]:
    route = definition()["States"]["Route"]
    start = next(
        c["Next"]
        for c in route["Choices"]
        if c.get("Variable") == "$.plan.Mode" and c.get("StringEquals") == mode
    )
    return steps(start)


def fault_points(path: list[Step], only: set[str] | None = None) -> list[tuple[str, str]]:
    """(state, when) for a fault after every Task's side effect, and before only where no kept
    "after" of the Task it follows meets the same world; `only` keeps these states."""
    kept = [s for s in path if only is None or s.state in only]
    names = {s.state for s in kept}
    points: list[tuple[str, str]] = []
    for step in kept:
        if step.follows is None or step.follows not in names:
            points.append((step.state, "before"))
        points.append((step.state, "after"))
    return points


def dropped_points(
    path: list[Step], only: set[str] | None = None
) -> dict[tuple[str, str], tuple[str, str]]:
    """Each "before" fault_points leaves out, and the kept point that meets the same world."""
    kept = set(fault_points(path, only))
    return {
        (s.state, "before"): (str(s.follows), "after")
        for s in path
        if (only is None or s.state in only) and (s.state, "before") not in kept
    }


def puts_back(phase: Phase) -> bool:
    """A phase that moves what the failure path puts back from the plan and EC2: the
    instance's state, its root volume's place, the lock (one of statemachine/phases.py's
    `changes`: "the instance (stopped)", "the root volume (detached)", "the lock (released)")."""
    return any(
        item.startswith(("the instance (", "the root volume (", "the lock ("))
        for item in phase.changes.split(", ")
    )


def placement_states(path: list[Step]) -> set[str]:
    """The Tasks whose phase puts_back, and the poll right after each (it waits for that
    change to land, so its "after" meets the next place)."""
    found = {s.state for s in path if puts_back(s.phase)}
    return found | {
        s.state for s in path if s.follows in found and s.phase.name.startswith("Check")
    }
