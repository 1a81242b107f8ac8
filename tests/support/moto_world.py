"""A moto world as the workflow leaves it at a given phase, for unit tests of the logic that
puts things back (rollback, cleanup, lock, in-flight marks, the ending, the janitor); the
fixtures that make one are in conftest.py.

Everything is made with boto3 directly and tagged as the phases tag it, so the logic under test
finds it the way it does in AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from lambdas.errors import NotReady
from lambdas.logic import inflight, lock
from lambdas.logic.tags import execution_filter, tag_specifications
from lambdas.names import pending_parameter
from lambdas.plan import Plan

REGION = "us-east-1"
STATE_MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:ResetAccess"
HELPER_DEVICE = "/dev/sdf"
# moto launches from an image ID it does not know; naming one of its own would first load its
# whole catalogue of public images (10-20 s).
IMAGE = "ami-0123456789abcdef0"


def execution_arn(execution: str) -> str:
    return f"arn:aws:states:{REGION}:123456789012:execution:ResetAccess:{execution}"


@dataclass
class World:
    """The account one run works in: the target instance, and what the run made so far."""

    ec2: Any
    ssm: Any
    dynamodb: Any
    table: str
    plan: Plan
    helper_id: str | None = None

    @property
    def execution(self) -> str:
        return str(self.plan["Execution"])

    @property
    def instance_id(self) -> str:
        return str(self.plan["InstanceId"])

    @property
    def volume_id(self) -> str:
        return str(self.plan["RootVolumeId"])

    # -- what the phases do, as they leave it -------------------------------------------------
    def network(self, execution: str | None = None) -> dict[str, str]:
        """PrepareNetwork with CreateNewVPC: VPC, subnet, gateway, routes, security group."""
        ec2 = self.ec2
        execution = execution or self.execution
        vpc = ec2.create_vpc(
            CidrBlock="10.213.0.0/24", TagSpecifications=tag_specifications("vpc", execution)
        )["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock="10.213.0.0/24",
            AvailabilityZone=self.plan["AvailabilityZone"],
            TagSpecifications=tag_specifications("subnet", execution),
        )["Subnet"]["SubnetId"]
        gateway = ec2.create_internet_gateway(
            TagSpecifications=tag_specifications("internet-gateway", execution)
        )["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        routes = ec2.create_route_table(
            VpcId=vpc, TagSpecifications=tag_specifications("route-table", execution)
        )["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
        ec2.associate_route_table(RouteTableId=routes, SubnetId=subnet)
        group = ec2.create_security_group(
            GroupName=f"reset-access-{execution}",
            Description="ResetAccess helper",
            VpcId=vpc,
            TagSpecifications=tag_specifications("security-group", execution),
        )["GroupId"]
        return {"SubnetId": subnet, "GroupId": group}

    def helper(self, execution: str | None = None) -> str:
        """LaunchHelper: a helper in the run's network, tagged with the execution."""
        execution = execution or self.execution
        network = self.network(execution)
        helper = self.ec2.run_instances(
            ImageId=IMAGE,
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            SubnetId=network["SubnetId"],
            SecurityGroupIds=[network["GroupId"]],
            TagSpecifications=tag_specifications(
                "instance", execution, Name=f"ResetAccess helper for {self.instance_id}"
            )
            + tag_specifications("volume", execution),
        )["Instances"][0]["InstanceId"]
        if execution == self.execution:
            self.helper_id = helper
        return str(helper)

    def stop(self) -> None:
        self.ec2.stop_instances(InstanceIds=[self.instance_id])

    def root_on(self, instance_id: str, device: str = HELPER_DEVICE) -> None:
        """DetachVolume then AttachVolume: the target's root on another instance."""
        self.ec2.detach_volume(VolumeId=self.volume_id, InstanceId=self.instance_id)
        self.ec2.attach_volume(VolumeId=self.volume_id, InstanceId=instance_id, Device=device)

    def pending_key(self) -> str:
        """CreateKey: the new private key, not yet published."""
        name = pending_parameter(self.instance_id, self.plan["Execution"])
        self.ssm.put_parameter(
            Name=name, Value="-----BEGIN OPENSSH PRIVATE KEY-----", Type="SecureString"
        )
        return name

    def kms_key(self) -> str:
        """The stack's key, which encrypts the keys in Parameter Store."""
        return str(boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"])

    def lock(self, arn: str | None = None) -> None:
        """Preflight's lock, by this run or (arn) another execution."""
        lock.acquire(self.dynamodb, self.table, self.instance_id, arn or self.plan["ExecutionArn"])

    def mark(self, invocation: str = "other-phase") -> None:
        """A phase that changes something, still running."""
        inflight.begin(self.dynamodb, self.table, self.execution, invocation)

    # -- what a test looks at after ------------------------------------------------------------
    def instance(self, instance_id: str | None = None) -> dict[str, Any]:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id or self.instance_id])[
            "Reservations"
        ]
        return dict(reservations[0]["Instances"][0])

    def state(self, instance_id: str | None = None) -> str:
        return str(self.instance(instance_id)["State"]["Name"])

    def root_attachment(self) -> tuple[str, str] | None:
        """(instance, device) the target's root volume is attached to, if any."""
        volume = self.ec2.describe_volumes(VolumeIds=[self.volume_id])["Volumes"][0]
        attached = [a for a in volume.get("Attachments", []) if a["State"] == "attached"]
        return (attached[0]["InstanceId"], attached[0]["Device"]) if attached else None

    def lock_holder(self) -> str | None:
        return lock.holder(self.dynamodb, self.table, self.instance_id)

    def marks_item(self) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"InstanceId": {"S": f"in-flight/{self.plan['Execution']}"}},
            ConsistentRead=True,
        )
        return dict(item.get("Item", {}))

    def marks_sealed(self) -> bool:
        """The run's ending closed its in-flight marks for good (lambdas/logic/inflight.py)."""
        return inflight.CLOSED in self.marks_item()

    def parameters(self) -> set[str]:
        """This instance's parameters (pending key, published key, result)."""
        pages = self.ssm.get_paginator("describe_parameters").paginate()
        return {
            p["Name"] for page in pages for p in page["Parameters"] if self.instance_id in p["Name"]
        }

    def tagged(self, execution: str | None = None) -> dict[str, list[str]]:
        """What still carries the execution's tag and is not gone."""
        tag = execution_filter(execution or self.execution)
        live = {
            "Name": "instance-state-name",
            "Values": ["pending", "running", "stopping", "stopped"],
        }
        found = {
            "instances": [
                i["InstanceId"]
                for r in self.ec2.describe_instances(Filters=[*tag, live])["Reservations"]
                for i in r["Instances"]
            ]
        }
        found["security_groups"] = [
            g["GroupId"] for g in self.ec2.describe_security_groups(Filters=tag)["SecurityGroups"]
        ]
        found["route_tables"] = [
            t["RouteTableId"] for t in self.ec2.describe_route_tables(Filters=tag)["RouteTables"]
        ]
        found["internet_gateways"] = [
            g["InternetGatewayId"]
            for g in self.ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]
        ]
        found["subnets"] = [
            s["SubnetId"] for s in self.ec2.describe_subnets(Filters=tag)["Subnets"]
        ]
        found["vpcs"] = [v["VpcId"] for v in self.ec2.describe_vpcs(Filters=tag)["Vpcs"]]
        return {kind: ids for kind, ids in found.items() if ids}


def until_done(step: Callable[[], Any], limit: int = 10) -> tuple[Any, int]:
    """Call a one-step-per-call function again while it raises NotReady, as the ASL's Retry
    does: (its result, how many calls it took)."""
    for calls in range(1, limit + 1):
        try:
            return step(), calls
        except NotReady:
            continue
    raise AssertionError(f"still NotReady after {limit} calls")
