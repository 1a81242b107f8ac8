"""The janitor's logic against moto: for an execution that ended without its own failure path,
the instance is put back, what the run made goes, the lock and marks go and the result says
so; a second janitor finds nothing left; nothing another execution holds is touched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from lambdas.logic import inflight
from lambdas.logic.janitor import IN_FLIGHT_SECONDS, Clock, clean_up_after
from lambdas.names import result_parameter
from tests.support.moto_world import STATE_MACHINE, World, execution_arn


class Executions:
    """Step Functions as the janitor reads one ended execution (moto's history is canned)."""

    def __init__(
        self,
        world: World,
        status: str,
        events: list[dict[str, Any]],
        execution_input: dict[str, Any] | None = None,
    ) -> None:
        self.described: dict[str, Any] = {
            "executionArn": world.plan["ExecutionArn"],
            "name": world.execution,
            "status": status,
            # Stopped just now: the marks the test left are of this moment, in real time.
            "stopDate": datetime.now(UTC),
            "input": json.dumps(execution_input or {"InstanceId": world.instance_id}),
        }
        self.events = events

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == self.described["executionArn"]
        return self.described

    def get_paginator(self, operation: str) -> Executions:
        assert operation == "get_execution_history"
        return self

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [{"events": self.events}]


def exited(state: str, output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "TaskStateExited",
        "stateExitedEventDetails": {"name": state, "output": json.dumps(output or {})},
    }


class Slept(list[float]):
    """The janitor's clock in a test: it starts when the execution stopped and moves on only
    by what the janitor sleeps, and the invocation's time runs out as it does; the janitor
    reads the in-flight marks on it too."""

    stopped_at = 0.0

    def now(self) -> float:
        return self.stopped_at + sum(self)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.append, remaining=lambda: 900.0 - sum(self))


def janitor(world: World, sfn: Executions, slept: Slept | None = None) -> dict[str, Any]:
    clock = Slept() if slept is None else slept
    clock.stopped_at = sfn.described["stopDate"].timestamp()
    event = {
        "detail": {"executionArn": world.plan["ExecutionArn"], "stateMachineArn": STATE_MACHINE}
    }
    return clean_up_after(
        world.ec2,
        world.ssm,
        world.dynamodb,
        cast(Any, sfn),  # Step Functions' history as moto cannot give it
        world.table,
        event,
        clock.clock(),
        STATE_MACHINE,
    )


def mid_run(world: World) -> None:
    """Aborted while the agent ran: root on the helper, network, pending key, lock, a mark."""
    world.lock()
    world.pending_key()
    helper = world.helper()
    world.stop()
    world.root_on(helper)
    world.mark()


def test_an_aborted_run_is_put_back_cleaned_up_unlocked_and_recorded(world: World) -> None:
    mid_run(world)
    sfn = Executions(world, "ABORTED", [exited("Preflight", {"plan": world.plan})])
    slept = Slept()

    done = janitor(world, sfn, slept)

    assert done == {
        "Action": "rolled back",
        "InstanceId": world.instance_id,
        "RolledBack": True,
        "RollbackDid": [
            f"{world.volume_id} is the root volume, at {world.plan['RootDeviceName']} on "
            f"{world.instance_id}",
            f"{world.instance_id} is running (as before the run)",
        ],
        "CleanedUp": True,
        "LockReleased": True,
        "Now": f"{world.instance_id} is running; root volume {world.volume_id} is "
        f"at {world.plan['RootDeviceName']} on {world.instance_id}",
    }
    assert world.root_attachment() == (world.instance_id, world.plan["RootDeviceName"])
    assert world.state() == "running"
    assert world.tagged() == {}
    assert world.parameters() == {result_parameter(world.instance_id)}
    assert world.lock_holder() is None
    assert world.marks_sealed()
    # It first waited out the stopped execution's phases, which may still create something,
    # then polled its closed marks until the one still open (begun at the stop) had run out.
    assert slept[0] == IN_FLIGHT_SECONDS
    assert sum(slept) >= inflight.MARK_SECONDS, slept
    result = json.loads(
        world.ssm.get_parameter(Name=result_parameter(world.instance_id))["Parameter"]["Value"]
    )
    assert (result["Outcome"], result["Error"], result["RecordedBy"]) == (
        "failed",
        "ExecutionAborted",
        "janitor",
    )
    assert result["ExecutionArn"] == world.plan["ExecutionArn"]
    # What it put back, as the workflow's own RecordFailure says it.
    assert result["RollbackDid"] == done["RollbackDid"]


def test_a_second_janitor_for_the_same_execution_finds_nothing_left(world: World) -> None:
    mid_run(world)
    sfn = Executions(world, "ABORTED", [exited("Preflight", {"plan": world.plan})])
    first = janitor(world, sfn)

    assert janitor(world, sfn) == first
    assert world.tagged() == {}
    assert world.state() == "running"


def test_a_failed_run_names_its_own_error(world: World) -> None:
    mid_run(world)
    failed = {
        "type": "ExecutionFailed",
        "executionFailedEventDetails": {"error": "States.Timeout", "cause": "RunRescue timed out"},
    }
    sfn = Executions(world, "FAILED", [exited("Preflight", {"plan": world.plan}), failed])

    janitor(world, sfn)

    result = json.loads(
        world.ssm.get_parameter(Name=result_parameter(world.instance_id))["Parameter"]["Value"]
    )
    assert result["Error"] == "States.Timeout"
    assert result["Cause"].startswith("RunRescue timed out | now: ")


def test_a_rollback_that_cannot_finish_claims_nothing_put_back(world: World) -> None:
    # The root volume is on an instance another execution made: the rollback refuses to move it.
    world.lock()
    other = world.helper(execution="someone-else")
    world.stop()
    world.root_on(other)
    sfn = Executions(world, "ABORTED", [exited("Preflight", {"plan": world.plan})])

    done = janitor(world, sfn)

    result = json.loads(
        world.ssm.get_parameter(Name=result_parameter(world.instance_id))["Parameter"]["Value"]
    )
    assert (done["RolledBack"], result["RolledBack"]) == (False, False)
    assert "RollbackDid" not in result and done["RollbackDid"] == []
    assert (
        f"rollback failed: rollback: root volume {world.volume_id} is attached to {other}"
        in (result["Cause"])
    )
    assert f"now: {world.instance_id} is stopped" in result["Cause"]


def test_a_run_that_recorded_its_own_end_is_left_as_it_is(world: World) -> None:
    world.lock(execution_arn("next-run"))
    sfn = Executions(
        world, "FAILED", [exited("Preflight", {"plan": world.plan}), exited("RecordFailure")]
    )

    assert janitor(world, sfn)["Action"] == "none"
    assert world.lock_holder() == execution_arn("next-run")


@pytest.mark.parametrize(("holder", "released"), [("own", True), ("other", False)])
def test_before_a_plan_only_its_own_lock_is_released(
    world: World, holder: str, released: bool
) -> None:
    arn = world.plan["ExecutionArn"] if holder == "own" else execution_arn("another-run")
    world.lock(arn)
    sfn = Executions(world, "ABORTED", [])

    done = janitor(world, sfn)

    assert done == {
        "Action": "lock only",
        "InstanceId": world.instance_id,
        "LockReleased": released,
    }
    assert world.lock_holder() == (None if released else arn)
    assert result_parameter(world.instance_id) not in world.parameters()


def test_another_state_machines_execution_is_ignored(world: World) -> None:
    world.lock()
    event = {
        "detail": {
            "executionArn": world.plan["ExecutionArn"],
            "stateMachineArn": STATE_MACHINE + "-other",
        }
    }

    done = clean_up_after(
        world.ec2,
        world.ssm,
        world.dynamodb,
        cast(Any, None),  # another state machine's event: the janitor must not ask
        world.table,
        event,
        Slept().clock(),
        STATE_MACHINE,
    )

    assert done["Action"] == "ignored"
    assert world.lock_holder() == world.plan["ExecutionArn"]
