"""Cleanup against moto: whatever the run made goes, found by its tag, in dependency order; the
target's root volume and other runs' resources stay; a second call finds nothing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.errors import NotReady
from lambdas.logic.cleanup import cleanup
from lambdas.logic.tags import tag_specifications
from tests.support.moto_world import World, until_done


def clean(world: World, ec2: Any = None, *, discard_pending_key: bool = True) -> Any:
    """One cleanup call, as the CleanUp phase makes it (ec2: a client standing in for EC2)."""
    return cleanup(
        ec2 or world.ec2,
        world.ssm,
        world.execution,
        world.instance_id,
        discard_pending_key=discard_pending_key,
    )


def root_on_a_helper_set_to_go_with_it(world: World) -> str:
    """The target's root on the run's helper with DeleteOnTermination true, as if something had
    set it: the helper's termination would then delete the volume. Returns the helper."""
    helper = world.helper()
    world.stop()
    world.root_on(helper)
    world.ec2.modify_instance_attribute(
        InstanceId=helper,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
    )
    return helper


class Refusing:
    """The moto client, except that some calls answer an error code."""

    def __init__(self, ec2: Any, **codes: str) -> None:
        self.ec2, self.codes = ec2, codes

    def __getattr__(self, name: str) -> Any:
        if name not in self.codes:
            return getattr(self.ec2, name)

        def refuse(**_: Any) -> None:
            raise ClientError({"Error": {"Code": self.codes[name], "Message": ""}}, name)

        return refuse


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
    # Dependents first: a VPC can go only once its groups, routes, gateway and subnets have.
    assert list(result["Removed"]) == [
        "security_groups",
        "route_tables",
        "internet_gateways",
        "subnets",
        "vpcs",
        "parameters",
    ]
    assert world.state() == "running"


def test_the_first_round_terminates_the_helper_and_keeps_its_network_for_the_next(
    world: World,
) -> None:
    helper = world.helper()
    pending = world.pending_key()

    with pytest.raises(NotReady, match=f"^{helper} terminating$"):
        clean(world)

    assert set(world.tagged()) >= {"subnets", "vpcs", "security_groups"}
    assert pending in world.parameters()


def test_a_piece_still_in_use_or_not_yet_visible_waits_for_the_next_round(world: World) -> None:
    network = world.network()
    vpc = world.ec2.describe_subnets(SubnetIds=[network["SubnetId"]])["Subnets"][0]["VpcId"]
    busy = Refusing(
        world.ec2,
        delete_subnet="DependencyViolation",
        delete_security_group="InvalidGroup.NotFound",
    )

    waiting = ", ".join((network["GroupId"], network["SubnetId"], vpc))
    with pytest.raises(NotReady, match=f"^still in use: {waiting}$"):
        clean(world, busy)

    # What went is not named again; the VPC still had its subnet, so it waited too.
    assert clean(world) == {
        "Removed": {
            "security_groups": [network["GroupId"]],
            "subnets": [network["SubnetId"]],
            "vpcs": [vpc],
        }
    }


def test_a_piece_already_gone_is_not_an_error_but_a_refusal_is(world: World) -> None:
    world.ec2.create_security_group(
        GroupName="helper",
        Description="helper",
        TagSpecifications=tag_specifications("security-group", world.execution),
    )

    gone = Refusing(world.ec2, delete_security_group="InvalidSecurityGroupID.NotFound")
    assert clean(world, gone) == {"Removed": {}}
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        clean(world, Refusing(world.ec2, delete_security_group="UnauthorizedOperation"))
    assert "security_groups" in world.tagged()


def test_a_helper_ec2_does_not_know_yet_waits_and_keeps_running(world: World) -> None:
    # Its root's DeleteOnTermination must be made false first, on an instance EC2 cannot see yet.
    helper = root_on_a_helper_set_to_go_with_it(world)
    lagging = Refusing(world.ec2, modify_instance_attribute="InvalidInstanceID.NotFound")

    with pytest.raises(NotReady, match=f"^{helper} not visible to EC2 yet$"):
        clean(world, lagging)

    assert world.state(helper) == "running"


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
    helper = root_on_a_helper_set_to_go_with_it(world)

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
