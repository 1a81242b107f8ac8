"""Cleanup against moto: whatever the run made goes, found by its tag, in dependency order; the
target's root volume and other runs' resources stay; a second call finds nothing."""

from __future__ import annotations

from lambdas.logic.cleanup import cleanup
from tests.support.moto_world import World, until_done


def test_everything_the_run_made_goes_and_the_pending_key_after_a_failure(world: World) -> None:
    world.helper()
    pending = world.pending_key()

    result, calls = until_done(
        lambda: cleanup(
            world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=True
        )
    )

    assert world.tagged() == {}
    assert world.state(world.helper_id) == "terminated"
    assert pending not in world.parameters()
    # The helper first (NotReady while it terminates), then the network it held.
    assert calls == 2
    assert set(result["Removed"]) == {
        "security_groups",
        "route_tables",
        "internet_gateways",
        "subnets",
        "vpcs",
        "parameters",
    }
    assert world.state() == "running"


def test_after_a_success_the_pending_key_stays_for_publish_result(world: World) -> None:
    world.helper()
    pending = world.pending_key()

    until_done(
        lambda: cleanup(
            world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=False
        )
    )

    assert world.tagged() == {}
    assert pending in world.parameters()


def test_the_target_root_volume_on_the_helper_survives_its_termination(world: World) -> None:
    helper = world.helper()
    world.stop()
    world.root_on(helper)
    # As if something had set it: the helper's termination would then delete the volume.
    world.ec2.modify_instance_attribute(
        InstanceId=helper,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
    )

    until_done(
        lambda: cleanup(
            world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=True
        )
    )

    volume = world.ec2.describe_volumes(VolumeIds=[world.volume_id])["Volumes"][0]
    assert volume["State"] == "available"
    assert world.state(helper) == "terminated"


def test_another_runs_resources_are_left_alone(world: World) -> None:
    world.helper()
    other = world.helper(execution="another-run")

    until_done(
        lambda: cleanup(
            world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=True
        )
    )

    assert world.tagged() == {}
    assert world.state(other) == "running"
    assert set(world.tagged("another-run")) == {
        "instances",
        "security_groups",
        "route_tables",
        "internet_gateways",
        "subnets",
        "vpcs",
    }


def test_a_second_cleanup_finds_nothing_left(world: World) -> None:
    world.helper()
    world.pending_key()
    until_done(
        lambda: cleanup(
            world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=True
        )
    )

    again = cleanup(
        world.ec2, world.ssm, world.execution, world.instance_id, discard_pending_key=True
    )

    assert again == {"Removed": {}}
