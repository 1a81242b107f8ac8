"""In-flight marks against moto: the failure path waits while another phase of the run may
still change something, not for its own mark, another run's, or a crashed phase's; and once it
looked, no phase of the run begins."""

from __future__ import annotations

import time

import pytest

from lambdas.errors import BranchStopped, NotReady
from lambdas.logic import inflight
from lambdas.names import LOCK_EXPIRY
from tests.support.moto_world import World

ME = "rollback-invocation"


def test_a_running_phase_keeps_the_failure_path_waiting_until_it_ends(world: World) -> None:
    world.mark("launch-helper-invocation")

    with pytest.raises(NotReady, match="1 phase"):
        inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)

    inflight.end(world.dynamodb, world.table, world.execution, "launch-helper-invocation")
    inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)


def test_its_own_mark_and_another_runs_do_not_hold_it_up(world: World) -> None:
    world.mark(ME)
    inflight.begin(world.dynamodb, world.table, "another-run", "launch-helper-invocation")

    inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)


def test_a_mark_older_than_any_function_may_run_is_a_crashed_phase(world: World) -> None:
    world.mark("crashed-invocation")
    # The mark's deadline, as a phase that began MARK_SECONDS + 1 ago left it.
    world.dynamodb.update_item(
        TableName=world.table,
        Key={"InstanceId": {"S": f"in-flight/{world.execution}"}},
        UpdateExpression="SET #mark = :until",
        ExpressionAttributeNames={"#mark": "t_crashed_invocation"},
        ExpressionAttributeValues={":until": {"N": str(int(time.time()) - 1)}},
    )

    inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)


def test_the_ending_seals_the_marks_for_good_and_is_safe_to_repeat(world: World) -> None:
    world.mark()
    world.lock()

    inflight.seal(world.dynamodb, world.table, world.execution)
    first = world.marks_item()[inflight.CLOSED]
    inflight.seal(world.dynamodb, world.table, world.execution)

    assert world.marks_item()[inflight.CLOSED] == first
    # An invocation of a stopped branch that starts even after the ending changes nothing.
    with pytest.raises(BranchStopped):
        inflight.begin(world.dynamodb, world.table, world.execution, "late-invocation")
    # The table's TTL removes the item once no invocation can start any more.
    expires = int(world.marks_item()[LOCK_EXPIRY]["N"])
    assert expires - time.time() <= inflight.SEALED_SECONDS
    # The marks live beside the lock in its table; sealing them leaves the lock.
    assert world.lock_holder() == world.plan["ExecutionArn"]


def test_the_failure_path_closes_the_marks_so_no_phase_begins_after(world: World) -> None:
    inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)

    # An invocation of a stopped branch that starts only now: refused, no mark left.
    with pytest.raises(BranchStopped, match="changes nothing"):
        inflight.begin(world.dynamodb, world.table, world.execution, "copy-root-invocation")
    item = world.marks_item()
    assert not [name for name in item if name.startswith(inflight.PREFIX)], item
    # Closed by a run that may never reach its ending: the table's TTL removes the item.
    assert int(item["ExpiresAt"]["N"]) > time.time() + 3600
    # Another run's marks stay open.
    inflight.begin(world.dynamodb, world.table, "another-run", "copy-root-invocation")


def test_a_phase_that_began_before_the_close_is_still_waited_for(world: World) -> None:
    world.mark("launch-helper-invocation")

    with pytest.raises(NotReady, match="1 phase"):
        inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)
    with pytest.raises(BranchStopped):
        inflight.begin(world.dynamodb, world.table, world.execution, "late-invocation")
    # Rollback's retry: still closed, still waiting, closed since the first look.
    closed = world.marks_item()[inflight.CLOSED]
    with pytest.raises(NotReady, match="1 phase"):
        inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)
    assert world.marks_item()[inflight.CLOSED] == closed

    inflight.end(world.dynamodb, world.table, world.execution, "launch-helper-invocation")
    inflight.wait_for_others(world.dynamodb, world.table, world.execution, ME)
