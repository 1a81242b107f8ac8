"""The target's cue to stop: this execution's helper runs; a helper that died stops the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.errors import NotReady, UnexpectedState
from lambdas.logic.helper import check_helper_running
from lambdas.logic.tags import tag_specifications

EXECUTION = "run-1"


@pytest.fixture
def ec2() -> Iterator[Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        yield client


def launch(ec2: Any, execution: str) -> str:
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=tag_specifications("instance", execution),
        )["Instances"][0]["InstanceId"]
    )


def test_not_ready_until_the_helper_exists(ec2: Any) -> None:
    launch(ec2, "another-run")
    with pytest.raises(NotReady, match="not launched yet"):
        check_helper_running(ec2, EXECUTION)


def test_ready_once_the_helper_runs(ec2: Any) -> None:
    helper = launch(ec2, EXECUTION)
    assert check_helper_running(ec2, EXECUTION) == {"InstanceId": helper, "Running": True}


def test_a_terminated_helper_ends_the_wait_with_the_reason(ec2: Any) -> None:
    helper = launch(ec2, EXECUTION)
    ec2.terminate_instances(InstanceIds=[helper])
    with pytest.raises(UnexpectedState, match=f"helper {helper} is terminated"):
        check_helper_running(ec2, EXECUTION)


def test_a_running_helper_counts_even_beside_a_dead_one(ec2: Any) -> None:
    dead = launch(ec2, EXECUTION)
    ec2.terminate_instances(InstanceIds=[dead])
    alive = launch(ec2, EXECUTION)
    assert check_helper_running(ec2, EXECUTION)["InstanceId"] == alive
