"""The calls a phase no longer makes, against moto: what it asks EC2 directly still ends where
the Describe-first way did, and what it skips on a first attempt or a recorded network is
still found when more is there than the record says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from lambdas.errors import UnexpectedState
from lambdas.logic.cleanup import cleanup
from lambdas.logic.instances import stop_instance
from lambdas.logic.network import prepare_network
from lambdas.logic.tags import tag_specifications
from lambdas.logic.volumes import attach_volume, detach_volume
from lambdas.plan import Plan
from local import ebs_attachments
from tests.support.moto_world import IMAGE, World, until_done


@pytest.fixture
def strict_attach() -> Iterator[None]:
    """moto with the engine's AttachVolume and DetachVolume refusals, as AWS answers."""
    with ebs_attachments.enforced():
        yield


def calls(world: World) -> list[str]:
    """The EC2 operations the test's client makes from now on."""
    made: list[str] = []
    world.ec2.meta.events.register(
        "before-call.ec2.*", lambda model, **kw: made.append(model.name), unique_id=str(id(made))
    )
    return made


def offline_plan(world: World) -> Plan:
    return cast(Plan, {**world.plan, "Subnet": {"Choice": "CreateNewVPC"}})


def test_a_recorded_network_goes_by_its_ids_after_one_look_for_more(world: World) -> None:
    network = prepare_network(world.ec2, offline_plan(world), first_attempt=True)
    made = calls(world)

    until_done(lambda: cleanup(world.ec2, world.ssm, world.execution, None, False, network))

    describes = [name for name in made if name.startswith("Describe")]
    assert describes == ["DescribeInstances", "DescribeTags"], " ".join(made)
    assert world.tagged() == {}


def test_more_than_the_record_holds_is_found_by_tag_and_goes_too(world: World) -> None:
    network = prepare_network(world.ec2, offline_plan(world), first_attempt=True)
    # A second VPC, as a create call botocore repeated after a timeout would leave.
    stray = world.ec2.create_vpc(
        CidrBlock="10.214.0.0/24", TagSpecifications=tag_specifications("vpc", world.execution)
    )["Vpc"]["VpcId"]

    result, _ = until_done(
        lambda: cleanup(world.ec2, world.ssm, world.execution, None, False, network)
    )

    assert world.tagged() == {}
    assert stray in result["Removed"]["vpcs"]


def test_a_retry_finds_the_network_a_first_attempt_made(world: World) -> None:
    plan = offline_plan(world)
    first = prepare_network(world.ec2, plan, first_attempt=True)

    again = prepare_network(world.ec2, plan)

    assert (again["VpcId"], again["SubnetId"], again["SecurityGroupId"]) == (
        first["VpcId"],
        first["SubnetId"],
        first["SecurityGroupId"],
    )
    # Only a first attempt vouches that it made all there is.
    assert "Pieces" in first and "Pieces" not in again
    assert len(world.tagged()["vpcs"]) == 1


def helper_instance(world: World) -> str:
    return str(
        world.ec2.run_instances(ImageId=IMAGE, InstanceType="t3.small", MinCount=1, MaxCount=1)[
            "Instances"
        ][0]["InstanceId"]
    )


def test_a_repeated_attach_is_done_and_one_elsewhere_is_refused(
    world: World, strict_attach: None
) -> None:
    world.stop()
    helper, other = helper_instance(world), helper_instance(world)
    detach_volume(world.ec2, world.volume_id, world.instance_id)

    attach_volume(world.ec2, world.volume_id, helper, "/dev/sdf")
    assert attach_volume(world.ec2, world.volume_id, helper, "/dev/sdf")["InstanceId"] == helper
    with pytest.raises(UnexpectedState, match=f"on {helper} at /dev/sdf"):
        attach_volume(world.ec2, world.volume_id, other, "/dev/sdf")
    assert world.root_attachment() == (helper, "/dev/sdf")


def test_a_repeated_detach_is_done_and_one_from_elsewhere_is_refused(
    world: World, strict_attach: None
) -> None:
    world.stop()
    helper = helper_instance(world)

    with pytest.raises(UnexpectedState, match=f"attached to {world.instance_id}, not {helper}"):
        detach_volume(world.ec2, world.volume_id, helper)
    assert detach_volume(world.ec2, world.volume_id, world.instance_id)["Detached"]
    assert not detach_volume(world.ec2, world.volume_id, world.instance_id)["Detached"]
    assert world.root_attachment() is None


def test_stop_answers_from_stopinstances_alone(world: World) -> None:
    made = calls(world)

    first = stop_instance(world.ec2, world.instance_id)
    again = stop_instance(world.ec2, world.instance_id)

    assert made == ["StopInstances", "StopInstances"]
    assert first == {"Stopped": True, "PreviousState": "running"}
    assert again["Stopped"] is False
    assert world.state() == "stopped"


def test_a_terminated_instance_is_not_stopped(world: World) -> None:
    world.ec2.terminate_instances(InstanceIds=[world.instance_id])

    with pytest.raises(UnexpectedState, match="terminated; it cannot be stopped"):
        stop_instance(world.ec2, world.instance_id)


def test_the_engine_lists_no_tags_of_a_deleted_resource(world: World) -> None:
    # AWS: a resource's tags go with it; moto kept listing them (local/ec2_tags.py).
    from local import ec2_tags

    with ec2_tags.enforced():
        vpc = world.ec2.create_vpc(
            CidrBlock="10.215.0.0/24", TagSpecifications=tag_specifications("vpc", "gone-run")
        )["Vpc"]["VpcId"]
        world.ec2.delete_vpc(VpcId=vpc)
        tags = world.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])

    assert tags["Tags"] == []
