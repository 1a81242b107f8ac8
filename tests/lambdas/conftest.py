"""Fixtures for the unit tests against moto: one account per module, a fresh run per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from lambdas.plan import Plan
from tests.support.moto_world import IMAGE, REGION, World, execution_arn


@dataclass
class Account:
    ec2: Any
    ssm: Any
    dynamodb: Any
    runs: Iterator[int]


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    """One moto account per module: each test's run has its own instance, execution and lock
    table in it, and starting moto costs seconds on a busy machine."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ):
            patch.setenv(name, value)
        with mock_aws():
            yield Account(
                ec2=boto3.client("ec2", region_name=REGION),
                ssm=boto3.client("ssm", region_name=REGION),
                dynamodb=boto3.client("dynamodb", region_name=REGION),
                runs=itertools.count(1),
            )


@pytest.fixture
def world(account: Account) -> World:
    """A running Linux instance, a lock table, and the plan Preflight made for it."""
    run = next(account.runs)
    ec2, dynamodb = account.ec2, account.dynamodb
    table = f"ResetAccess-Locks-{run}"
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "InstanceId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "InstanceId", "KeyType": "HASH"}],
    )
    instance = ec2.run_instances(ImageId=IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]
    instance = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]
    root = next(
        m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"]
    )
    execution = f"unit-{run:04d}"
    plan = {
        "InstanceId": instance["InstanceId"],
        "Execution": execution,
        "ExecutionArn": execution_arn(execution),
        "StartedAt": "1970-01-01T00:00:00.000Z",
        "Action": "reset",
        "Mode": "offline",
        "Platform": "linux",
        "InitialState": "running",
        "AvailabilityZone": instance["Placement"]["AvailabilityZone"],
        "RootDeviceName": instance["RootDeviceName"],
        "RootVolumeId": root["Ebs"]["VolumeId"],
        "RootDeleteOnTermination": True,
        "Backup": "none",
        "KeyParameter": f"/ec2rl/openssh/{instance['InstanceId']}/key",
    }
    # Only the keys rollback, cleanup, the lock and the ending read: a partial plan.
    return World(ec2, account.ssm, dynamodb, table, cast(Plan, plan))
