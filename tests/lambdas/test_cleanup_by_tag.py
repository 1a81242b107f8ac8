"""Cleanup by tag against moto: what this execution created goes, in dependency order, over as
many rounds as EC2 needs; what others created, and volumes this run did not make, stay."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.errors import NotReady
from lambdas.logic.cleanup import cleanup
from lambdas.logic.tags import tag_specifications
from lambdas.names import pending_parameter

EXECUTION = "run-1"
TARGET = "i-0123456789abcdef0"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield (
            boto3.client("ec2", region_name="us-east-1"),
            boto3.client("ssm", region_name="us-east-1"),
        )


def network(ec2: Any, execution: str) -> dict[str, str]:
    """The helper's own VPC as CreateHelperNetwork makes it, every piece tagged."""
    vpc = ec2.create_vpc(
        CidrBlock="10.9.0.0/16", TagSpecifications=tag_specifications("vpc", execution)
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock="10.9.0.0/24",
        TagSpecifications=tag_specifications("subnet", execution),
    )["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"helper-{execution}",
        Description="helper",
        VpcId=vpc,
        TagSpecifications=tag_specifications("security-group", execution),
    )["GroupId"]
    table = ec2.create_route_table(
        VpcId=vpc, TagSpecifications=tag_specifications("route-table", execution)
    )["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    gateway = ec2.create_internet_gateway(
        TagSpecifications=tag_specifications("internet-gateway", execution)
    )["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    return {
        "vpcs": vpc,
        "subnets": subnet,
        "security_groups": group,
        "route_tables": table,
        "internet_gateways": gateway,
    }


def helper(ec2: Any, execution: str, subnet: str) -> str:
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            TagSpecifications=tag_specifications("instance", execution),
        )["Instances"][0]["InstanceId"]
    )


def test_instances_first_then_the_network_then_the_pending_key(aws: tuple[Any, Any]) -> None:
    ec2, ssm = aws
    ours = network(ec2, EXECUTION)
    theirs = network(ec2, "run-2")
    instance = helper(ec2, EXECUTION, ours["subnets"])
    other = helper(ec2, "run-2", theirs["subnets"])
    # The target's root, attached as AttachVolume does but marked to go with the helper.
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
    ec2.modify_instance_attribute(
        InstanceId=instance,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
    )
    ssm.put_parameter(Name=pending_parameter(TARGET, EXECUTION), Value="k", Type="SecureString")

    with pytest.raises(NotReady, match=f"^{instance} terminating$"):
        cleanup(ec2, ssm, EXECUTION, TARGET, True)
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"]
    assert ec2.describe_subnets(SubnetIds=[ours["subnets"]])["Subnets"]
    assert ssm.get_parameter(Name=pending_parameter(TARGET, EXECUTION), WithDecryption=True)

    # The round that terminated the helper raised NotReady: only this round's removals show.
    result = cleanup(ec2, ssm, EXECUTION, TARGET, True)
    assert result == {
        "Removed": {
            **{kind: [resource] for kind, resource in ours.items()},
            "parameters": ["pending key"],
        }
    }
    assert list(result["Removed"]) == [
        "security_groups",
        "route_tables",
        "internet_gateways",
        "subnets",
        "vpcs",
        "parameters",
    ]
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available"
    assert ec2.describe_vpcs(VpcIds=[theirs["vpcs"]])["Vpcs"]
    state = ec2.describe_instances(InstanceIds=[other])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "running"
    # Idempotent: a retry finds nothing left.
    assert cleanup(ec2, ssm, EXECUTION, TARGET, True) == {"Removed": {}}


def test_the_pending_key_stays_after_a_success(aws: tuple[Any, Any]) -> None:
    ec2, ssm = aws
    ssm.put_parameter(Name=pending_parameter(TARGET, EXECUTION), Value="k", Type="SecureString")
    assert cleanup(ec2, ssm, EXECUTION, TARGET, False) == {"Removed": {}}
    assert cleanup(ec2, ssm, EXECUTION, None, True) == {"Removed": {}}
    assert ssm.get_parameter(Name=pending_parameter(TARGET, EXECUTION))


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


def test_a_piece_still_in_use_or_not_yet_visible_waits_for_the_next_round(
    aws: tuple[Any, Any],
) -> None:
    ec2, ssm = aws
    ours = network(ec2, EXECUTION)
    busy: Any = Refusing(
        ec2, delete_subnet="DependencyViolation", delete_security_group="InvalidGroup.NotFound"
    )
    waiting = ", ".join(ours[kind] for kind in ("security_groups", "subnets", "vpcs"))
    with pytest.raises(NotReady, match=f"^still in use: {waiting}$"):
        cleanup(busy, ssm, EXECUTION, TARGET, True)
    # What went is not named again; the VPC still had its subnet, so it waited too.
    result = cleanup(ec2, ssm, EXECUTION, TARGET, True)
    assert result == {
        "Removed": {
            "security_groups": [ours["security_groups"]],
            "subnets": [ours["subnets"]],
            "vpcs": [ours["vpcs"]],
        }
    }


def test_a_piece_already_gone_is_not_an_error_but_a_refusal_is(aws: tuple[Any, Any]) -> None:
    ec2, ssm = aws
    ec2.create_security_group(
        GroupName="helper",
        Description="helper",
        TagSpecifications=tag_specifications("security-group", EXECUTION),
    )
    gone: Any = Refusing(ec2, delete_security_group="InvalidSecurityGroupID.NotFound")
    assert cleanup(gone, ssm, EXECUTION, TARGET, False) == {"Removed": {}}
    denied: Any = Refusing(ec2, delete_security_group="UnauthorizedOperation")
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        cleanup(denied, ssm, EXECUTION, TARGET, False)


def test_a_helper_ec2_does_not_know_yet_waits(aws: tuple[Any, Any]) -> None:
    ec2, ssm = aws
    instance = helper(ec2, EXECUTION, network(ec2, EXECUTION)["subnets"])
    ec2.attach_volume(
        VolumeId=ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"],
        InstanceId=instance,
        Device="/dev/sdf",
    )
    ec2.modify_instance_attribute(
        InstanceId=instance,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
    )
    lagging: Any = Refusing(ec2, modify_instance_attribute="InvalidInstanceID.NotFound")
    with pytest.raises(NotReady, match=f"^{instance} not visible to EC2 yet$"):
        cleanup(lagging, ssm, EXECUTION, TARGET, False)
    running = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert running["State"]["Name"] == "running"
