"""Rollback against moto: from wherever the run left the root volume, back to the target at its
root device, the instance in its first state; and only what the run itself moved."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.errors import RollbackIncomplete
from lambdas.logic.rollback import rollback, where_things_are
from tests.support.moto_world import World, until_done


def test_a_root_volume_on_the_helper_goes_back_and_the_instance_starts(world: World) -> None:
    helper = world.helper()
    world.stop()
    world.root_on(helper)

    result, calls = until_done(lambda: rollback(world.ec2, world.plan))

    device = world.plan["RootDeviceName"]
    assert world.root_attachment() == (world.instance_id, device)
    assert world.state() == "running"
    # One step per call: detach from the helper, attach to the target, start it.
    assert calls == 4
    assert result == {
        "InstanceState": "running",
        "RootVolume": f"{world.volume_id} at {device} on {world.instance_id}",
        "Did": [
            f"{world.volume_id} is the root volume, at {device} on {world.instance_id}",
            f"{world.instance_id} is running (as before the run)",
        ],
    }
    root = next(m for m in world.instance()["BlockDeviceMappings"] if m["DeviceName"] == device)
    assert root["Ebs"]["DeleteOnTermination"] is True
    # The helper is cleanup's to remove, not rollback's.
    assert world.state(helper) == "running"


def test_a_second_rollback_finds_nothing_to_do(world: World) -> None:
    world.stop()
    world.root_on(world.helper())
    until_done(lambda: rollback(world.ec2, world.plan))

    assert rollback(world.ec2, world.plan)["InstanceState"] == "running"
    assert world.root_attachment() == (world.instance_id, world.plan["RootDeviceName"])


def test_a_detached_root_volume_is_attached_again(world: World) -> None:
    world.stop()
    world.ec2.detach_volume(VolumeId=world.volume_id, InstanceId=world.instance_id)

    until_done(lambda: rollback(world.ec2, world.plan))

    assert world.root_attachment() == (world.instance_id, world.plan["RootDeviceName"])
    assert world.state() == "running"


def test_an_instance_that_was_stopped_stays_stopped(world: World) -> None:
    world.plan["InitialState"] = "stopped"
    world.stop()
    world.root_on(world.helper())

    result, _ = until_done(lambda: rollback(world.ec2, world.plan))

    assert result["InstanceState"] == "stopped"
    assert world.state() == "stopped"
    assert world.root_attachment() == (world.instance_id, world.plan["RootDeviceName"])


def test_a_root_volume_on_an_instance_the_run_did_not_make_is_left_there(world: World) -> None:
    stranger = world.helper(execution="another-run")
    world.stop()
    world.root_on(stranger)

    with pytest.raises(RollbackIncomplete, match=f"attached to {stranger}, which this execution"):
        rollback(world.ec2, world.plan)

    assert world.root_attachment() == (stranger, "/dev/sdf")


def test_a_root_volume_at_another_device_of_the_target_is_not_moved(world: World) -> None:
    world.stop()
    world.root_on(world.instance_id, device="/dev/sdg")

    with pytest.raises(RollbackIncomplete, match="not its root device"):
        rollback(world.ec2, world.plan)

    assert world.root_attachment() == (world.instance_id, "/dev/sdg")
    assert world.state() == "stopped"


def test_where_things_are_tells_a_person_what_to_do(world: World) -> None:
    helper = world.helper()
    world.stop()
    world.root_on(helper)

    where = where_things_are(world.ec2, world.plan)

    assert where == (
        f"{world.instance_id} is stopped (it was running: start it once the volume is back); "
        f"root volume {world.volume_id} is attached on {helper} at /dev/sdf; move it back to "
        f"{world.instance_id} at {world.plan['RootDeviceName']}"
    )


def test_replace_roots_rollback_says_again_only_where_the_old_root_moved() -> None:
    # An abort before ReplaceRoot (no task) or a task that failed with the old root still
    # attached put nothing back: the result names where the root is, not a restoration.
    from lambdas.logic.replace_root import what_was_done

    def task(state: str) -> Any:  # ReplaceRootVolumeTaskTypeDef, as EC2 describes one
        return {"ReplaceRootVolumeTaskId": "replacevol-1", "TaskState": state, "Tags": []}

    assert what_was_done([], "vol-old", None) == ["vol-old is the root volume"]
    assert what_was_done([task("failed")], "vol-old", "vol-copy")[1:] == [
        "vol-old is the root volume",
        "deleted the copy vol-copy",
    ]
    assert "vol-old is the root volume again" in what_was_done([task("succeeded")], "vol-old", None)
    assert "vol-old is the root volume again" in what_was_done(
        [task("failed-detached")], "vol-old", None
    )
