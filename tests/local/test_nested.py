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
