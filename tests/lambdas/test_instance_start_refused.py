"""A start that EC2 accepts and then undoes (e.g. no rights on the volumes' KMS key) ends the
wait at once, naming why, instead of polling with the instance down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ec2.models import ec2_backends

from lambdas.errors import NotReady, UnexpectedState
from lambdas.logic.instances import wait_instance_state

# What EC2 reports for an instance it could not start (EC2 User Guide, "Troubleshoot instance
# launch issues": "Client.InternalError: Client error on launch").
CLIENT_ERROR = ("Client.InternalError", "Client.InternalError: Client error on launch")


@pytest.fixture
def ec2() -> Iterator[Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def stopped_instance(ec2: Any, reason: tuple[str, str] | None) -> str:
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    instance_id = str(
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    )
    ec2.stop_instances(InstanceIds=[instance_id])
    if reason:
        instance = ec2_backends["123456789012"]["us-east-1"].get_instance(instance_id)
        instance.state_reason.code, instance.state_reason.message = reason
    return instance_id


def test_a_start_ec2_undid_ends_the_wait_naming_the_reason(ec2: Any) -> None:
    instance_id = stopped_instance(ec2, CLIENT_ERROR)
    with pytest.raises(UnexpectedState, match=r"stopped again instead of starting.*KMS key"):
        wait_instance_state(ec2, instance_id, "running")


def test_a_stopped_instance_without_a_client_error_is_waited_for(ec2: Any) -> None:
    # Right after StartInstances, DescribeInstances may still show the instance stopped.
    instance_id = stopped_instance(ec2, None)
    with pytest.raises(NotReady):
        wait_instance_state(ec2, instance_id, "running")
