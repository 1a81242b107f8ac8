"""A fault at every Task of the helper path, before and after its side effect, for a running
and a stopped instance, and of the replace-root path (a running instance): the run fails,
names the state, and leaves the world as it found it. Retryable faults heal. The list of
states comes from the definition (asl_paths.py). EC2's eventual consistency is on throughout
(local/consistency.py): every resource the run creates answers NotFound to the first calls
naming it, as AWS may."""

from __future__ import annotations

import json

import pytest

from statemachine import phases
from statemachine.definition import definition, tasks
from tests.support.asl_paths import offline_linux_tasks, replace_root_tasks
from tests.support.workflow import Run, RunScenario, linux_instance

TASKS = offline_linux_tasks()
FAST_KEY = {"InstanceId": "@web", "KeyType": "ed25519"}
REPLACE_ROOT = {**FAST_KEY, "Mode": "replace-root"}
REPLACE_ROOT_TASKS = replace_root_tasks()
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


@pytest.mark.parametrize("state", TASKS)
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("initial", ["running", "stopped"])
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


@pytest.mark.parametrize("state", TASKS)
def test_retryable_fault_heals(run_scenario: RunScenario, state: str) -> None:
    # After the side effect, the harder case (before it, a retry is a first attempt): the
    # retry must find the first attempt's work and not repeat it.
    run = run_scenario(
        input=FAST_KEY,
        faults=[{"state": state, "when": "after", "error": "Lambda.ServiceException", "times": 2}],
        eventual_consistency=LAG,
    )

    run.assert_one_clean_reset()


@pytest.mark.parametrize(
    "state,error", [("PrepareNetwork", "Sandbox.Timedout"), ("LaunchHelper", "Lambda.Unknown")]
)
def test_function_timeout_is_retried(run_scenario: RunScenario, state: str, error: str) -> None:
    # Lambda reports a function killed at its timeout as Sandbox.Timedout (Lambda.Unknown
    # without an error type); killed after its side effect, the retry finds the work done.
    run = run_scenario(
        input=FAST_KEY, faults=[{"state": state, "when": "after", "error": error, "times": 1}]
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()
    assert run.report["api_calls"].get("ec2:RunInstances", 0) == 1
    assert run.report["api_calls"].get("ec2:CreateVpc", 0) == 1


@pytest.mark.parametrize("state", REPLACE_ROOT_TASKS)
@pytest.mark.parametrize("when", ["before", "after"])
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
