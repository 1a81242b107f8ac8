"""local/nested.py: Step Functions' own integration as AWS runs it, where moto 5.2.5 differs.

AWS Step Functions Developer Guide, "Start a new AWS Step Functions state machine from a running
execution" (startExecution.sync:2 returns DescribeExecution's response, Output as JSON) and
"Discover service integration patterns" (Run a Job (.sync): stopping the execution stops the
job it started)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import emulator, nested

CHILD_WAITS = {
    "StartAt": "W",
    "States": {
        "W": {"Type": "Wait", "Seconds": 20, "Next": "P"},
        "P": {"Type": "Pass", "Result": {"ok": 1}, "End": True},
    },
}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), nested.corrections():
        yield boto3.client("stepfunctions", region_name="us-east-1")


def machine(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    role = f"arn:aws:iam::{emulator.ACCOUNT}:role/r"
    return str(
        sfn.create_state_machine(name=name, roleArn=role, definition=json.dumps(definition))[
            "stateMachineArn"
        ]
    )


def parent_of(child: str) -> dict[str, Any]:
    return {
        "StartAt": "S",
        "States": {
            "S": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child, "Name": "c1", "Input": {"a": 1}},
                "End": True,
            }
        },
    }


def wait_end(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(200):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.05)
    raise AssertionError("still running")


def test_sync2_starts_the_child_and_returns_its_description_with_output_as_json(sfn: Any) -> None:
    child = machine(
        sfn,
        "child",
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}},
    )
    arn = sfn.start_execution(stateMachineArn=machine(sfn, "parent", parent_of(child)))[
        "executionArn"
    ]

    ended = wait_end(sfn, arn)

    assert ended["status"] == "SUCCEEDED", ended
    output = json.loads(ended["output"])
    assert output["Status"] == "SUCCEEDED"
    assert output["Output"] == {"ok": 1}
    assert output["Input"] == {"a": 1}
    assert output["ExecutionArn"].endswith(":child:c1")
    assert isinstance(output["StartDate"], int)


def test_stopping_the_parent_stops_the_child_it_started(sfn: Any) -> None:
    child = machine(sfn, "child", CHILD_WAITS)
    arn = sfn.start_execution(stateMachineArn=machine(sfn, "parent", parent_of(child)))[
        "executionArn"
    ]
    for _ in range(100):
        if sfn.list_executions(stateMachineArn=child)["executions"]:
            break
        time.sleep(0.02)

    sfn.stop_execution(executionArn=arn, error="Stop", cause="test")

    assert wait_end(sfn, arn)["status"] == "ABORTED"
    (started,) = sfn.list_executions(stateMachineArn=child)["executions"]
    assert wait_end(sfn, started["executionArn"])["status"] == "ABORTED"


MEMBER = "111122223333"


def member_machine(trusted: str) -> str:
    """In the member account: a child machine, and a role that trusts `trusted`'s roles."""
    from local import locations

    where = locations.Location(MEMBER, "us-east-1")
    locations.client("iam", where).create_role(
        RoleName="Member",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{trusted}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    return machine(
        locations.client("stepfunctions", where),
        "child",
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    )


def with_credentials(child: str) -> dict[str, Any]:
    definition = parent_of(child)
    definition["States"]["S"]["Credentials"] = {"RoleArn": f"arn:aws:iam::{MEMBER}:role/Member"}
    return definition


def test_credentials_role_arn_starts_the_child_in_the_roles_account(sfn: Any) -> None:
    """Developer Guide, "Accessing resources in other AWS accounts in Step Functions": a Task
    with Credentials.RoleArn makes its call as that role, in its account."""
    from local import locations

    child = member_machine(trusted=emulator.ACCOUNT)
    parent = machine(sfn, "parent", with_credentials(child))
    ended = wait_end(sfn, sfn.start_execution(stateMachineArn=parent)["executionArn"])

    assert ended["status"] == "SUCCEEDED", ended.get("cause")
    member_sfn = locations.client("stepfunctions", locations.Location(MEMBER, "us-east-1"))
    started = member_sfn.list_executions(stateMachineArn=child)["executions"]
    assert [e["name"] for e in started] == ["c1"]


def test_a_credentials_role_that_does_not_trust_the_execution_role_fails_the_task(
    sfn: Any,
) -> None:
    child = member_machine(trusted="444455556666")
    parent = machine(sfn, "parent", with_credentials(child))
    ended = wait_end(sfn, sfn.start_execution(stateMachineArn=parent)["executionArn"])

    assert ended["status"] == "FAILED"
    assert "AccessDenied" in f"{ended.get('error')} {ended.get('cause')}"
    assert "sts:AssumeRole" in str(ended.get("cause"))
