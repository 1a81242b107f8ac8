"""A fault at every Task of the helper path, before and after its side effect, for a running
and a stopped instance, and of the replace-root path (a running instance): the run fails,
names the state, and leaves the world as it found it. Retryable faults heal. The list of
states comes from the definition (asl_paths.py). EC2's eventual consistency is on throughout
(local/consistency.py): every resource the run creates answers NotFound to the first calls
naming it, as AWS may.

Every distinct world a fault can leave is run once; a case left out meets the world of a kept
one (the cases are derived from the definition, so a new state is covered without an edit):
- "before" B, where B directly follows Task A (same branch, same Catch), meets the world
  "after" A does: nothing runs in between, and the failure path reads only the plan, the error
  and EC2, never what A handed B (asl_paths.fault_points; dropped_points names each one's
  cover, checked below).
- A stopped instance: StopInstance leaves it as it is, so its world at each point is the
  running one's but for the instance's state, which the failure path reads only to decide
  whether to start it (lambdas/logic/rollback.py). So it is faulted where the instance's state,
  its root volume's place or the lock changes and where each change lands
  (asl_paths.placement_states); between those (the network, helper, backup, key, command and
  cleanup) the volume is where the last kept point left it, and the running cases cover what
  the failure path does with those pieces.
- A retryable fault heals by the handler's retry: one state per phase that changes something
  (RETRIED). A poll changes nothing and is retried on every NotReady of every run; a second
  state of a phase (DetachFromHelper, ReattachRootVolume) runs its handler's same retry.
"""

from __future__ import annotations

import json

import pytest

from statemachine import phases, policies
from statemachine.definition import definition, tasks
from tests.support.asl_paths import (
    dropped_points,
    fault_points,
    mode_steps,
    placement_states,
    steps,
)
from tests.support.workflow import Run, RunScenario, linux_instance

PATH = steps()
STOPPED_STATES = placement_states(PATH)
CASES = [("running", *point) for point in fault_points(PATH)] + [
    ("stopped", *point) for point in fault_points(PATH, STOPPED_STATES)
]
RETRIED: list[str] = []
for step in PATH:
    changes = not step.phase.changes.startswith("nothing")
    if changes and step.phase not in {s.phase for s in PATH if s.state in RETRIED}:
        RETRIED.append(step.state)
REPLACE_ROOT_PATH = mode_steps("replace-root")
FAST_KEY = {"InstanceId": "@web", "KeyType": "ed25519"}
REPLACE_ROOT = {**FAST_KEY, "Mode": "replace-root"}
REPLACE_ROOT_TASKS = [step.state for step in REPLACE_ROOT_PATH]
REPLACE_ROOT_CASES = fault_points(REPLACE_ROOT_PATH)
LAG = {"seed": 0, "max_lag": 2}


def assert_invariants(run: Run, state: str) -> None:
    """The invariants of docs/runbook.md (1-5 and 7, and 6: no secret) after a failed run."""
    run.assert_restored()  # 1, 2
    assert run.instance()["booting_from"] == run.instance()["root_volume_id"]
    run.assert_nothing_left()  # 3
    moved = run.report["api_calls"].get("ec2:DetachVolume", 0) > 0
    copied = run.report["api_calls"].get("ec2:CopyVolumes", 0) > 0
    if moved and not copied:  # 4
        assert run.world["backups"]["images"], "the root volume moved without a backup"
    if copied:  # 4, replace-root: a snapshot of the running root before it is copied
        assert run.world["backups"]["snapshots"], "the root volume was copied without a backup"
        assert run.world["kept_root_volumes"] == {}, "the old root is tagged as replaced"
    assert run.world["locks"] == {}, run.world["locks"]  # 5
    run.assert_no_secret_leaked()  # 6
    instance_id = run.instance()["id"]
    result = json.loads(run.world["parameters"][f"/reset-access/{instance_id}/result"]["value"])
    assert result["Outcome"] == "failed" and result["RolledBack"], result
    assert f"{state}: " in result["Cause"], result["Cause"]


def test_each_case_left_out_meets_the_world_of_a_kept_one() -> None:
    kept = set(CASES)
    for initial, only in (("running", None), ("stopped", STOPPED_STATES)):
        for (state, when), cover in dropped_points(PATH, only).items():
            assert (initial, *cover) in kept and (initial, state, when) not in kept
    # After its side effect, every Task for a running instance; for a stopped one, every
    # Task that stops, starts or moves something, and the wait after it.
    assert {state for initial, state, when in CASES if when == "after"} == {s.state for s in PATH}
    assert {"StopInstance", "WaitStopped", "RestoreInstance", "WaitInitialState"} < STOPPED_STATES
    assert {"DetachRootVolume", "AttachToHelper", "ReattachRootVolume"} < STOPPED_STATES


@pytest.mark.parametrize(("initial", "state", "when"), CASES, ids=["-".join(c) for c in CASES])
def test_non_retryable_fault_rolls_back(
    run_scenario: RunScenario, state: str, when: str, initial: str
) -> None:
    run = run_scenario(
        {"web": linux_instance(state=initial)},
        input=FAST_KEY,
        faults=[{"state": state, "when": when, "error": "InjectedFault"}],
        eventual_consistency=LAG,
    )

    assert run.report["status"] == "FAILED"
    assert run.report["error"] == "InjectedFault"
    assert f"{state}: injected InjectedFault {when}" in run.report["cause"], run.report["cause"]
    assert_invariants(run, state)
    # The workflow's own failure path did the work; the janitor found nothing left to do.
    assert [j.get("Action") for j in run.report["janitor"]] == ["none"], run.report["janitor"]


@pytest.mark.parametrize("state", RETRIED)
def test_retryable_fault_heals(run_scenario: RunScenario, state: str) -> None:
    # After the side effect, the harder case (before it, a retry is a first attempt): the
    # retry must find the first attempt's work and not repeat it.
    run = run_scenario(
        input=FAST_KEY,
        faults=[{"state": state, "when": "after", "error": "Lambda.ServiceException", "times": 2}],
        eventual_consistency=LAG,
    )

    run.assert_one_clean_reset()


@pytest.mark.parametrize("error", ["Sandbox.Timedout", "Lambda.Unknown"])
def test_a_function_killed_at_its_timeout_is_retried(error: str) -> None:
    # Lambda reports a function killed at its timeout as Sandbox.Timedout (Lambda.Unknown
    # without an error type). Every Task's last Retry is TRANSIENT (tests/workflow/
    # test_definition.py), and a retry after the side effect finds the work done for every
    # phase (test_retryable_fault_heals): the same Retry whatever error name it matched.
    assert error in policies.TRANSIENT["ErrorEquals"]


@pytest.mark.parametrize(
    ("state", "when"), REPLACE_ROOT_CASES, ids=["-".join(c) for c in REPLACE_ROOT_CASES]
)
def test_replace_root_fault_rolls_back(run_scenario: RunScenario, state: str, when: str) -> None:
    run = run_scenario(
        input=REPLACE_ROOT,
        faults=[{"state": state, "when": when, "error": "InjectedFault"}],
        eventual_consistency=LAG,
    )

    assert run.report["status"] == "FAILED"
    assert f"{state}: injected InjectedFault {when}" in run.report["cause"], run.report["cause"]
    assert_invariants(run, state)
    # Never stopped, whatever failed: the instance runs on its old root.
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == 0
    assert [j.get("Action") for j in run.report["janitor"]] == ["none"], run.report["janitor"]


# Retry safety is the handler's: the path's other Tasks run the offline path's handlers, whose
# retries test_retryable_fault_heals covers; these are the ones only replace-root runs.
REPLACE_ROOT_OWN = [
    state
    for state, task in tasks(definition()["States"])
    if state in REPLACE_ROOT_TASKS
    and any(
        phase.placeholder in json.dumps(task)
        for phase in (phases.COPY_ROOT_VOLUME, phases.REPLACE_ROOT, phases.CHECK_REPLACE_ROOT)
    )
]


@pytest.mark.parametrize("state", REPLACE_ROOT_OWN)
def test_replace_root_retryable_fault_heals(run_scenario: RunScenario, state: str) -> None:
    run = run_scenario(
        input=REPLACE_ROOT,
        faults=[{"state": state, "when": "after", "error": "Lambda.ServiceException", "times": 2}],
        eventual_consistency=LAG,
    )

    run.assert_one_clean_replacement()
