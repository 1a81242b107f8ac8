"""The workflow definition built by statemachine/: every Task's retries and catches follow the
named policies, every phase is invoked, and the polls give up in time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lambdas.logic.inflight import MARK_SECONDS
from lambdas.logic.lock import LOCK_SECONDS
from lambdas.logic.rescue_command import COMMAND_TIMEOUT_SECONDS
from stacks.permissions import MARKS_IN_FLIGHT
from statemachine import __main__ as cli
from statemachine import policies
from statemachine.definition import TIMEOUT_SECONDS, definition, render, tasks
from statemachine.phases import PHASES, by_name
from statemachine.states import State, phase_of, walk

STATES = definition()["States"]
FAILURE_PATH = {
    "Rollback": "CleanUpAfterFailure",
    "CleanUpAfterFailure": "RecordFailure",
    "RecordFailure": "FailedUnrecorded",
}
TASKS = dict(tasks())


def test_every_phase_is_invoked_and_every_task_invokes_a_phase() -> None:
    invoked = {phase_of(state) for state in TASKS.values()}
    assert invoked == {p.name for p in PHASES}
    for name, state in TASKS.items():
        assert state["Resource"] == "${" + by_name(phase_of(state)).placeholder + "}", name


@pytest.mark.parametrize("name", TASKS)
def test_every_task_retries_the_transient_errors_last(name: str) -> None:
    assert TASKS[name]["Retry"][-1] == policies.TRANSIENT


@pytest.mark.parametrize("name", TASKS)
def test_a_task_polls_only_for_not_ready_and_before_the_transient_retry(name: str) -> None:
    retriers = TASKS[name]["Retry"]
    assert len(retriers) <= 2
    if len(retriers) == 2:
        assert retriers[0]["ErrorEquals"] == [policies.NOT_READY]
        assert retriers[0] in policies.POLLS.values()
    if phase_of(TASKS[name]).startswith("Check"):
        assert len(retriers) == 2, f"{name} checks the world and so polls"


def test_after_preflight_every_top_level_task_and_parallel_catches_to_rollback() -> None:
    guarded = [
        name
        for name, state in STATES.items()
        if state["Type"] in ("Task", "Parallel") and name not in ("Preflight", *FAILURE_PATH)
    ]
    assert len(guarded) >= 10
    for name in guarded:
        assert STATES[name]["Catch"][-1] == policies.catch("Rollback"), name
    assert STATES["Preflight"]["Catch"] == [
        policies.catch_raised("ReadRefusal", result_path="$"),
        policies.catch("PreflightFailed", result_path="$"),
    ]


def test_the_refusal_path_reads_every_error_our_functions_raise() -> None:
    # ReadRefusal parses the Cause as the function's error JSON: only our own errors have it.
    from lambdas import errors

    ours = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ResetAccessError)
    }
    assert set(policies.RAISED) == ours - {"ResetAccessError"}


def test_tasks_inside_parallel_branches_leave_the_catch_to_their_parallel() -> None:
    for name, state in STATES.items():
        if state["Type"] == "Parallel":
            inner = [
                n for branch in state["Branches"] for n, s in walk(branch["States"]) if "Catch" in s
            ]
            assert inner == [], name


def test_each_failure_step_goes_on_to_the_next_even_when_it_fails() -> None:
    for name, after in FAILURE_PATH.items():
        (catcher,) = STATES[name]["Catch"]
        assert catcher["ErrorEquals"] == [policies.ALL_ERRORS]
        assert catcher["Next"] == after
        # The run's error stays where RecordFailure reads it.
        assert catcher["ResultPath"] != "$.error"
    assert STATES["Rollback"]["Next"] == "CleanUpAfterFailure"
    assert STATES["CleanUpAfterFailure"]["Next"] == "RecordFailure"


def test_the_rescue_poll_outlasts_the_rescue_command() -> None:
    # The command's own timeout ends a hung agent, and CheckRescue reports it by name.
    assert sum(policies.schedule(policies.RESCUE)) > COMMAND_TIMEOUT_SECONDS


def _worst_wait(states: dict[str, State], start: str) -> float:
    """The longest a run can spend in polls from `start` on the helper path's defaults."""
    total = 0.0
    name: str | None = start
    while name:
        state = states[name]
        if state["Type"] == "Parallel":
            total += max(_worst_wait(b["States"], b["StartAt"]) for b in state["Branches"])
        for retrier in state.get("Retry", [])[:-1]:
            total += sum(policies.schedule(retrier))
        name = state.get("Default") if state["Type"] == "Choice" else state.get("Next")
        if name in FAILURE_PATH or name == "PublishResult":
            break
    return total


def test_every_wait_of_a_run_gives_up_before_the_execution_times_out() -> None:
    # A stuck resource then fails the run at the poll that waits for it, naming it.
    assert _worst_wait(STATES, "Prepare") < TIMEOUT_SECONDS
    assert LOCK_SECONDS > TIMEOUT_SECONDS, "a crashed run's lock must outlive the run"


def test_an_in_flight_mark_outlives_the_function_that_made_it() -> None:
    for phase in PHASES:
        if phase.handler in MARKS_IN_FLIGHT:
            assert phase.timeout_seconds < MARK_SECONDS, phase.name


def test_make_asl_writes_the_definition(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "build" / "reset_access.asl.json"
    assert cli.main(["--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render()
    capsys.readouterr()
    assert cli.main([]) == 0
    assert capsys.readouterr().out == render()
