"""Constructors of Amazon States Language states for statemachine/definition.py: each takes
what is special about a state and adds what every state of its kind shares (the phase's
Resource, the execution context, the TRANSIENT retry, the Catch to Rollback of a Parallel)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from statemachine import policies
from statemachine.phases import Phase
from statemachine.policies import TO_ROLLBACK, Catcher, Retrier

State = dict[str, Any]

# Every phase logs which state and execution it runs for (lambdas/runtime.py); on a first
# attempt (RetryCount 0) no earlier attempt of its state made anything (runtime.first_attempt).
CONTEXT = {
    "state.$": "$$.State.Name",
    "execution.$": "$$.Execution.Name",
    "retryCount.$": "$$.State.RetryCount",
}
# A Task inside a Parallel branch may still run after another branch failed and the failure path
# began: a phase that changes something marks itself in flight there (lambdas/logic/inflight.py).
IN_PARALLEL = {"inParallel": True}
PLAN = {"plan.$": "$.plan"}


def task(
    phase: Phase,
    *,
    result: str | None,
    params: Mapping[str, Any] = PLAN,
    then: str | None = None,
    poll: Retrier | None = None,
    catches: Sequence[Catcher] = (),
    comment: str | None = None,
) -> State:
    """A Task invoking `phase`: TRANSIENT retry always, `poll` first if it waits for AWS; the
    output at `result` (None: discarded); `then` the next state, or the end of its branch."""
    state: State = {"Type": "Task"}
    if comment:
        state["Comment"] = comment
    state["Resource"] = "${" + phase.placeholder + "}"
    state["Parameters"] = {**CONTEXT, **params}
    state["ResultPath"] = result
    state["Retry"] = copy.deepcopy([poll, policies.TRANSIENT] if poll else [policies.TRANSIENT])
    if catches:
        state["Catch"] = copy.deepcopy(list(catches))
    state.update({"Next": then} if then else {"End": True})
    return state


def parallel(
    branches: Sequence[dict[str, State]],
    *,
    selector: Mapping[str, str],
    result: str,
    then: str,
    comment: str,
) -> State:
    """Branches that run at once (each starts at its first state); any failure goes to
    Rollback. Their Tasks say so to the phase (IN_PARALLEL)."""
    marked = [
        {
            name: {**state, "Parameters": {**state["Parameters"], **IN_PARALLEL}}
            if state["Type"] == "Task"
            else state
            for name, state in states.items()
        }
        for states in branches
    ]
    return {
        "Type": "Parallel",
        "Comment": comment,
        "Branches": [{"StartAt": next(iter(states)), "States": states} for states in marked],
        "ResultSelector": dict(selector),
        "ResultPath": result,
        "Catch": copy.deepcopy(list(TO_ROLLBACK)),
        "Next": then,
    }


def choice(default: str, *choices: tuple[str, str, Any, str], comment: str | None = None) -> State:
    """A Choice of (variable, comparison, value, next) rules, else `default`."""
    state: State = {"Type": "Choice"}
    if comment:
        state["Comment"] = comment
    state["Choices"] = [
        {"Variable": variable, comparison: value, "Next": then}
        for variable, comparison, value, then in choices
    ]
    state["Default"] = default
    return state


def fail(error_path: str, cause_path: str, comment: str) -> State:
    return {"Type": "Fail", "Comment": comment, "ErrorPath": error_path, "CausePath": cause_path}


def walk(states: Mapping[str, State]) -> Iterator[tuple[str, State]]:
    """Every state, those inside Parallel branches included, with its name."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from walk(branch["States"])


def phase_of(state: State) -> str:
    """The name of the phase function a Task invokes: `${CheckVolumeFunctionArn}` ->
    `CheckVolume`."""
    resource: str = state["Resource"]
    return resource.removeprefix("${").removesuffix("FunctionArn}")
