"""PrepareNetwork run again after it was killed half way (a function timeout, now retried by the
ASL) leaves the helper's security group as a whole run does: HTTPS and HTTP out, nothing else.
And the wait for a new resource's ID is bounded and only for EC2's consistency errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.logic import consistency
from lambdas.logic.network import prepare_network
from lambdas.logic.tags import tag_specifications

EXECUTION = "run-1"


@pytest.fixture
def ec2() -> Iterator[Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def egress_of(ec2: Any, group_id: str) -> list[tuple[str, Any]]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted((p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"])


@pytest.mark.parametrize("killed_after", ["create", "revoke"])
def test_rerun_finishes_a_half_made_security_group(ec2: Any, killed_after: str) -> None:
    subnet = ec2.describe_subnets()["Subnets"][0]
    group_id = ec2.create_security_group(
        GroupName=f"reset-access-{EXECUTION}",
        Description="half made",
        VpcId=subnet["VpcId"],
        TagSpecifications=tag_specifications("security-group", EXECUTION),
    )["GroupId"]
    if killed_after == "revoke":
        ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )

    plan: Any = {
        "Execution": EXECUTION,
        "Subnet": {"Choice": "Given", "SubnetId": subnet["SubnetId"]},
    }
    network = prepare_network(ec2, plan)

    assert network["SecurityGroupId"] == group_id
    assert egress_of(ec2, group_id) == [("tcp", 80), ("tcp", 443)]


def _refusal(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeInstances")


@pytest.fixture
def slept() -> Iterator[list[float]]:
    waited: list[float] = []
    with consistency.waits(waited.append):
        yield waited


def test_settled_waits_out_a_new_id_then_gives_up(slept: list[float]) -> None:
    answers = iter([_refusal("InvalidGroup.NotFound")] * 2 + ["found"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, ClientError):
            raise answer
        return str(answer)

    assert consistency.settled(call) == "found"
    assert slept == [0.5, 1.0]

    slept.clear()

    def never() -> str:
        raise _refusal("InvalidInstanceID.NotFound")

    with pytest.raises(ClientError):
        consistency.settled(never)
    assert len(slept) == len(consistency.DELAYS) and sum(slept) < 10


def test_settled_does_not_wait_on_other_refusals(slept: list[float]) -> None:

    def refused() -> str:
        raise _refusal("InvalidKeyPair.NotFound")

    with pytest.raises(ClientError):
        consistency.settled(refused)
    assert slept == []
