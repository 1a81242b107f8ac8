"""The helper instance: launched once per execution, found again by its tag on a retry."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from lambdas.errors import NotReady, UnexpectedState
from lambdas.logic.consistency import not_yet_visible, settled
from lambdas.logic.tags import execution_filter, tag_specifications
from lambdas.plan import Plan
from lambdas.records import HelperRecord, NetworkRecord

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import (
        InstanceNetworkInterfaceSpecificationTypeDef,
        InstanceTypeDef,
    )
    from mypy_boto3_ssm import SSMClient

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def find_helper(ec2: EC2Client, execution: str) -> InstanceTypeDef | None:
    reservations = ec2.describe_instances(
        Filters=[
            *execution_filter(execution),
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ]
    )["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0] if instances else None


def launch_helper(
    ec2: EC2Client,
    ssm: SSMClient,
    plan: Plan,
    network: NetworkRecord,
    profile_arn: str,
    first_attempt: bool = False,
) -> HelperRecord:
    """first_attempt: no earlier attempt can have launched one, so none is looked for."""
    execution = plan["Execution"]
    existing = None if first_attempt else find_helper(ec2, execution)
    if existing:
        return {"InstanceId": existing["InstanceId"], "ImageId": existing["ImageId"]}
    image_id = ssm.get_parameter(Name=plan["HelperAmiParameter"])["Parameter"]["Value"]
    # The encrypted gp3 override must name the image's own root device: under any other name
    # it would add a second, empty volume instead.
    root_device = ec2.describe_images(ImageIds=[image_id])["Images"][0]["RootDeviceName"]
    interface: InstanceNetworkInterfaceSpecificationTypeDef = {
        "DeviceIndex": 0,
        "SubnetId": network["SubnetId"],
        "Groups": [network["SecurityGroupId"]],
        "AssociatePublicIpAddress": bool(network["PublicIp"]),
        "DeleteOnTermination": True,
    }
    # The subnet and group may be minutes old or just made; the same token makes a retry safe.
    response = settled(
        lambda: ec2.run_instances(
            ImageId=image_id,
            # Preflight found the type offered in this Region.
            InstanceType=cast("InstanceTypeType", plan["HelperInstanceType"]),
            MinCount=1,
            MaxCount=1,
            # Same token on a retry: EC2 returns the first launch instead of a second helper.
            ClientToken=hashlib.sha256(f"{execution}/helper".encode()).hexdigest()[:64],
            IamInstanceProfile={"Arn": profile_arn},
            NetworkInterfaces=[interface],
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            BlockDeviceMappings=[
                {
                    "DeviceName": root_device,
                    "Ebs": {"VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
                }
            ],
            InstanceInitiatedShutdownBehavior="terminate",
            TagSpecifications=tag_specifications(
                "instance", execution, Name=f"ResetAccess helper for {plan['InstanceId']}"
            )
            + tag_specifications("volume", execution),
        )
    )
    instance = response["Instances"][0]
    return {"InstanceId": instance["InstanceId"], "ImageId": image_id}


def check_helper_ready(ec2: EC2Client, ssm: SSMClient, helper_id: str) -> dict[str, Any]:
    """Ready when SSM says Online (its agent runs, so the helper does); until then EC2 says
    whether it is still coming up (NotReady) or never will (UnexpectedState)."""
    if _online(ssm, helper_id):
        return {"InstanceId": helper_id, "Ready": True}
    try:
        reservations = ec2.describe_instances(InstanceIds=[helper_id])["Reservations"]
    except ClientError as error:
        if not_yet_visible(error):
            # Just launched: EC2 may not know the ID yet (eventual consistency), not gone.
            raise NotReady(f"helper {helper_id} is not visible to EC2 yet") from None
        raise
    instance = reservations[0]["Instances"][0]
    state = instance["State"]["Name"]
    if state in ("shutting-down", "terminated", "stopping", "stopped"):
        raise UnexpectedState(f"helper {helper_id} is {state}; it cannot be used")
    if state != "running":
        raise NotReady(f"helper {helper_id} is {state}")
    raise NotReady(f"helper {helper_id} is running but not yet managed by SSM")


def _online(ssm: SSMClient, instance_id: str) -> bool:
    info = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
    ).get("InstanceInformationList", [])
    return any(i.get("PingStatus") == "Online" for i in info)


def check_helper_running(ec2: EC2Client, execution: str) -> dict[str, Any]:
    """The target waits for this before it stops: an instance is never stopped for a helper
    that cannot launch, and its downtime no longer includes the network and the launch.
    Ready once this execution's helper runs; NotReady until it exists and runs."""
    reservations = ec2.describe_instances(Filters=execution_filter(execution))["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise NotReady("the helper of this execution is not launched yet")
    # The liveliest first: running, then pending, then one that is gone.
    order = ["running", "pending"]
    instances.sort(
        key=lambda i: order.index(i["State"]["Name"]) if i["State"]["Name"] in order else len(order)
    )
    helper_id, state = instances[0]["InstanceId"], instances[0]["State"]["Name"]
    if state == "pending":
        raise NotReady(f"helper {helper_id} is pending")
    if state != "running":
        raise UnexpectedState(f"helper {helper_id} is {state}; the instance is left as it is")
    return {"InstanceId": helper_id, "Running": True}
