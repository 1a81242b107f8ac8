"""Executions that end without their own Catch path (stopped by a person, timed out, or failed
in Preflight after locking): the janitor restores and unlocks. And one run per instance.

The janitor waits for phases still in flight, then runs the failure path's own rollback and
cleanup (lambdas/logic/janitor.py) from what EC2 says, one step after another until the world
is as it was, so an abort is run where that wait or that world differs (derived from the
definition, asl_paths.py):
- a running instance, when each Task inside a Parallel that changes something returns (other
  branches' functions may still run when it is stopped: the janitor's wait), and when each
  top-level Task that moves the root volume or ends the run returns (AttachToHelper,
  DetachFromHelper, PublishResult). Left out: the waits (WaitHelperReady, WaitStopped,
  WaitRootDetached, WaitAttachedToHelper, WaitDetachedFromHelper, WaitReattached,
  WaitInitialState, ...) and RunRescue, after which the root volume is where the kept abort
  before them left it or where the rollback from there passes next (detaching, then available),
  and the top-level ones with nothing in flight; test_fault_matrix.py runs the same rollback
  from each of those worlds.
- a stopped instance, where its state, its root volume's place or the lock changes
  (asl_paths.puts_back): its world is the running one's but for the instance's state, which
  the rollback reads only to decide whether to start it.
"""

from __future__ import annotations

import json

import pytest

from tests.support.asl_paths import puts_back, steps
from tests.support.workflow import Run, RunScenario, linux_instance

FAST_KEY = {"InstanceId": "@web", "KeyType": "ed25519"}
PATH = steps()
ABORTS = [
    ("running", s.state)
    for s in PATH
    if (s.in_parallel and not s.phase.changes.startswith("nothing")) or puts_back(s.phase)
] + [("stopped", s.state) for s in PATH if puts_back(s.phase)]


def assert_janitor_restored(run: Run) -> None:
    run.assert_restored()
    run.assert_nothing_left()
    assert run.world["locks"] == {}, run.world["locks"]
    run.assert_no_secret_leaked()
    if run.report["api_calls"].get("ec2:DetachVolume", 0):
        assert run.world["backups"]["images"], "the root volume moved without a backup"


@pytest.mark.parametrize(("initial", "state"), ABORTS, ids=["-".join(a) for a in ABORTS])
def test_abort_at_any_state_is_undone_by_the_janitor(
    run_scenario: RunScenario, state: str, initial: str
) -> None:
    # Running: the janitor must start it again. Stopped: it must leave it stopped.
    run = run_scenario({"web": linux_instance(state=initial)}, input=FAST_KEY, abort_at=state)

    assert run.report["status"] == "ABORTED"
    assert_janitor_restored(run)
    janitor = run.report["janitor"]
    assert len(janitor) == 1 and not janitor[0]["errored"], janitor
    instance_id = run.instance()["id"]
    result = json.loads(run.world["parameters"][f"/reset-access/{instance_id}/result"]["value"])
    assert result["Outcome"] == "failed" and result["RecordedBy"] == "janitor", result
    assert result["Error"] == "ExecutionAborted"
    # What it put back, never more than EC2 shows.
    volume, device = run.instance()["root_volume_id"], run.instance()["root_attached_device"]
    assert result["RollbackDid"] == [
        f"{volume} is the root volume, at {device} on {instance_id}",
        f"{instance_id} is {initial} (as before the run)",
    ]


def test_abort_after_preflight_releases_the_lock(run_scenario: RunScenario) -> None:
    run = run_scenario(input=FAST_KEY, abort_at="Preflight")
    assert run.report["status"] == "ABORTED"
    assert_janitor_restored(run)


@pytest.mark.parametrize("when", ["before", "after"])
def test_preflight_fault_changes_nothing_and_leaves_no_lock(
    run_scenario: RunScenario, when: str
) -> None:
    # After its side effect Preflight holds the lock, and fails to Refused with no Catch path:
    # the janitor, started by the FAILED status, releases it.
    run = run_scenario(
        input=FAST_KEY, faults=[{"state": "Preflight", "when": when, "error": "InjectedFault"}]
    )
    assert run.report["status"] == "FAILED"
    assert "Preflight: injected InjectedFault" in run.report["cause"]
    assert run.world["instances"] == run.engine.world_before["instances"]
    assert run.world["locks"] == {}
    run.assert_nothing_left()


def test_two_executions_for_one_instance_one_runs(run_scenario: RunScenario) -> None:
    run = run_scenario(input=FAST_KEY, copies=2)

    outcomes = sorted(
        (e["status"], e["states"][:3] == ["Preflight", "ReadRefusal", "Refused"])
        for e in run.report["executions"]
    )
    assert outcomes == [("FAILED", True), ("SUCCEEDED", False)], run.report["executions"]
    refused = next(e for e in run.report["executions"] if e["status"] == "FAILED")
    assert refused["error"] == "InstanceLocked" and "is being reset by" in refused["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    assert run.world["locks"] == {}
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == 1
