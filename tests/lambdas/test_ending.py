"""The ending every run shares (lambdas/logic/ending.py) against moto: what PublishResult,
RecordFailure and the janitor leave, in which order, and what a retried ending finds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.logic.ending import Finished, Run, fail, finish
from lambdas.logic.keys import publish_key
from lambdas.names import result_parameter
from tests.support.moto_world import World, execution_arn


class Throttled:
    """Parameter Store refusing every write, as when throttled past the client's retries."""

    def put_parameter(self, **_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutParameter"
        )


def stored_result(world: World) -> dict[str, Any]:
    value = world.ssm.get_parameter(Name=result_parameter(world.instance_id))["Parameter"]
    return dict(json.loads(value["Value"]))


def fail_run(world: World, error: str, cause: str, **errors: Any) -> tuple[Finished, str]:
    """RecordFailure's ending for the world's run."""
    errors = {"rollback_error": None, "cleanup_error": None, **errors}
    return fail(
        world.ec2,
        world.ssm,
        world.dynamodb,
        world.table,
        Run.of(world.plan),
        error,
        cause,
        **errors,
    )


def test_a_success_writes_its_result_then_lets_go(world: World) -> None:
    world.lock()
    world.mark()
    result = {"Outcome": "succeeded", "InstanceId": world.instance_id}

    finished = finish(world.ssm, world.dynamodb, world.table, Run.of(world.plan), result)

    assert finished.parameter == result_parameter(world.instance_id)
    assert finished.lock_released is True
    assert stored_result(world) == result
    assert world.lock_holder() is None
    assert world.marks_sealed()


def test_a_success_whose_result_cannot_be_written_keeps_the_lock(world: World) -> None:
    # Its Catch path still puts things back, which only the lock keeps others from.
    world.lock()
    world.mark()

    with pytest.raises(ClientError):
        throttled: Any = Throttled()
        finish(throttled, world.dynamodb, world.table, Run.of(world.plan), {"Outcome": "x"})

    assert world.lock_holder() == world.plan["ExecutionArn"]
    assert not world.marks_sealed()


def test_a_retried_publish_finds_the_key_published_and_ends_the_same(world: World) -> None:
    kms = world.kms_key()
    world.lock()
    pending = world.pending_key()
    result = {"Outcome": "succeeded", "InstanceId": world.instance_id}
    run = Run.of(world.plan)

    for _ in range(2):
        # The second time the pending key is gone: DescribeParameters says it was published.
        assert publish_key(world.ssm, world.plan, kms) is True
        finished = finish(world.ssm, world.dynamodb, world.table, run, result)

    assert finished.lock_released is True
    assert pending not in world.parameters()
    assert world.plan["KeyParameter"] in world.parameters()
    assert stored_result(world) == result


def test_a_failure_says_whether_the_lock_was_released(world: World) -> None:
    world.lock()
    run = Run.of(world.plan)

    def result(released: bool) -> dict[str, Any]:
        return {"Outcome": "failed", "LockReleased": released}

    first = finish(world.ssm, world.dynamodb, world.table, run, result)
    again = finish(world.ssm, world.dynamodb, world.table, run, result)

    assert first.lock_released is again.lock_released is True
    assert stored_result(world) == {"Outcome": "failed", "LockReleased": True}


def test_a_failure_leaves_another_executions_lock_and_says_so(world: World) -> None:
    other = execution_arn("another-run")
    world.lock(other)

    finished, _ = fail_run(world, "States.Timeout", "LaunchHelper timed out")

    assert finished.lock_released is False
    assert world.lock_holder() == other
    assert stored_result(world)["LockReleased"] is False


def test_a_failure_records_what_failed_and_where_things_are(world: World) -> None:
    helper = world.helper()
    world.stop()
    world.root_on(helper)
    world.lock()
    world.mark()

    finished, where = fail_run(
        world, "AwsError", "AttachVolume failed", rollback_error="detach refused", by="janitor"
    )

    stored = stored_result(world)
    assert stored == finished.result
    assert f"on {helper} at /dev/sdf" in where
    assert stored["Cause"] == (
        f"AttachVolume failed | rollback failed: detach refused | now: {where}"
    )
    assert (stored["Outcome"], stored["Error"], stored["RecordedBy"]) == (
        "failed",
        "AwsError",
        "janitor",
    )
    assert (stored["RolledBack"], stored["CleanedUp"], stored["LockReleased"]) == (
        False,
        True,
        True,
    )
    assert world.lock_holder() is None
    assert world.marks_sealed()
