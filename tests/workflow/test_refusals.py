"""Refused inputs: the execution fails in Preflight, names the field and the reason, and the
account is exactly as before."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.workflow import RunScenario, linux_instance


@pytest.mark.parametrize(
    "execution_input,field,reason",
    [
        ({"InstanceId": "i-123"}, "InstanceId", "is not an instance ID"),
        ({"InstanceId": "I-0123456789ABCDEF0"}, "InstanceId", "is not an instance ID"),
        ({"InstanceId": "i-0123456789abcdef0"}, "InstanceId", "no instance i-0123456789abcdef0"),
        ({"InstanceId": "@web", "Force": True}, "Force", "unknown input key"),
        ({"InstanceId": "@web", "Mode": "fast"}, "Mode", "is not one of"),
        ({"InstanceId": "@web", "DryRun": "yes"}, "DryRun", "expected true or false"),
        ({"InstanceId": "@web", "SubnetId": "subnet-zz"}, "SubnetId", "neither CreateNewVPC"),
        ({"InstanceId": "@web", "PublicKey": "ssh-rsa not-base64!"}, "PublicKey", "base64"),
        (
            {"InstanceId": "@web", "HelperInstanceType": "t9.galactic"},
            "HelperInstanceType",
            "not an instance type offered",
        ),
        ({}, "InstanceId", "required"),
        (["i-0123456789abcdef0"], "input", "expected a JSON object"),
    ],
)
def test_bad_input_is_refused(
    run_scenario: RunScenario, execution_input: Any, field: str, reason: str
) -> None:
    run_scenario(input=execution_input).assert_refused(field, reason)


def test_subnet_in_another_zone_is_refused(run_scenario: RunScenario) -> None:
    def other_zone_subnet(engine):
        import boto3

        ec2 = boto3.client("ec2", region_name="us-east-1")
        subnet = ec2.describe_subnets(
            Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}]
        )["Subnets"][0]["SubnetId"]
        engine.scenario.input["SubnetId"] = subnet

    run = run_scenario(
        input={"InstanceId": "@web", "SubnetId": "placeholder"}, prepare=other_zone_subnet
    )
    run.assert_refused("SubnetId", "is in us-east-1b, but the instance is in us-east-1a")


@pytest.mark.parametrize(
    "overrides,field,reason",
    [
        ({"root_device_type": "instance-store"}, "InstanceId", "instance-store root"),
        ({"state": "terminated"}, "InstanceId", "is terminated"),
        ({"state": "pending"}, "InstanceId", "is pending"),
        ({"state": "stopping"}, "InstanceId", "is stopping"),
        ({"encrypted": True, "kms_key_state": "Disabled"}, "InstanceId", "is Disabled"),
        (
            {"encrypted": True, "kms_key_state": "PendingDeletion"},
            "InstanceId",
            "is PendingDeletion",
        ),
    ],
)
def test_instance_that_cannot_be_reset_is_refused(
    run_scenario: RunScenario, overrides: dict[str, Any], field: str, reason: str
) -> None:
    run_scenario({"web": linux_instance(**overrides)}).assert_refused(field, reason)


def test_mode_online_on_unreachable_instance_is_refused(run_scenario: RunScenario) -> None:
    run = run_scenario(input={"InstanceId": "@web", "Mode": "online"})
    run.assert_refused("Mode", "needs")


def test_locked_instance_is_refused(run_scenario: RunScenario) -> None:
    def held_lock(engine):
        import time

        import boto3

        boto3.client("dynamodb", region_name="us-east-1").put_item(
            TableName="ResetAccess-Locks",
            Item={
                "InstanceId": {"S": engine.ids["web"]},
                "ExecutionArn": {
                    "S": "arn:aws:states:us-east-1:123456789012:execution:ResetAccess:other"
                },
                "ExpiresAt": {"N": str(int(time.time()) + 3600)},
            },
        )

    run = run_scenario(prepare=held_lock)
    # The conditional put is refused by DynamoDB: the other execution keeps its lock.
    run.assert_refused("InstanceId", "is being reset by arn:aws:states", ("dynamodb:PutItem",))


def test_encrypted_root_with_usable_key_is_reset(run_scenario: RunScenario) -> None:
    run = run_scenario({"web": linux_instance(encrypted=True)})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_key_opens()
