"""The instance lock against moto: one execution per instance, taken again by the same one,
released only by its holder, and a release that finds no lock is one done before."""

from __future__ import annotations

import re
import time

import pytest

from lambdas.errors import InstanceLocked
from lambdas.logic import lock
from tests.support.moto_world import World, execution_arn

OTHER = execution_arn("another-run")


def test_a_second_execution_is_refused_and_named(world: World) -> None:
    world.lock()

    holder = re.escape(f"being reset by {world.plan['ExecutionArn']}")
    with pytest.raises(InstanceLocked, match=holder):
        lock.acquire(world.dynamodb, world.table, world.instance_id, OTHER)

    assert world.lock_holder() == world.plan["ExecutionArn"]


def test_a_retried_preflight_takes_its_own_lock_again(world: World) -> None:
    world.lock()
    world.lock()
    assert world.lock_holder() == world.plan["ExecutionArn"]


def test_an_expired_lock_is_taken_over(world: World) -> None:
    world.dynamodb.put_item(
        TableName=world.table,
        Item={
            "InstanceId": {"S": world.instance_id},
            "ExecutionArn": {"S": OTHER},
            "ExpiresAt": {"N": str(int(time.time()) - 1)},
        },
    )

    world.lock()

    assert world.lock_holder() == world.plan["ExecutionArn"]


def test_only_the_holder_releases_it(world: World) -> None:
    world.lock(OTHER)

    assert (
        lock.release(world.dynamodb, world.table, world.instance_id, world.plan["ExecutionArn"])
        is False
    )
    assert world.lock_holder() == OTHER


def test_a_released_lock_released_again_is_still_released(world: World) -> None:
    world.lock()
    arn = world.plan["ExecutionArn"]

    assert lock.release(world.dynamodb, world.table, world.instance_id, arn) is True
    assert lock.release(world.dynamodb, world.table, world.instance_id, arn) is True
    assert world.lock_holder() is None
    lock.acquire(world.dynamodb, world.table, world.instance_id, OTHER)
    assert world.lock_holder() == OTHER
