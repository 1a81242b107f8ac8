"""The seams a harness passes to a phase handler on its context (lambdas/runtime.py): faults
around the side effect, none in AWS; the waits for a new ID; and the in-flight mark in the
lock table Config names, refused once the failure path closed the marks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas import runtime
from lambdas.errors import BranchStopped
from lambdas.logic import consistency, inflight
from lambdas.runtime import Seams, phase

TABLE = "Configured-Locks"


@dataclass
class AwsContext:
    """What Lambda passes: no seams."""

    aws_request_id: str = "request-1"
    function_name: str = "ResetAccess-Test"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:Test"
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"


@dataclass
class Context(AwsContext):
    seams: Seams = field(default_factory=Seams)


class Injected(Exception):
    pass


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LOCK_TABLE_NAME": TABLE,
        "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/k",
        "RESCUE_DOCUMENT_NAME": "ResetAccess-Rescue",
        "HELPER_INSTANCE_PROFILE_ARN": "arn:aws:iam::123456789012:instance-profile/h",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset_clients()
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "InstanceId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "InstanceId", "KeyType": "HASH"}],
        )
        yield dynamodb
    runtime.reset_clients()


def test_the_fault_seam_is_called_around_the_side_effect() -> None:
    calls: list[tuple[str, str]] = []

    @phase
    def step(event: dict[str, Any]) -> str:
        calls.append(("logic", ""))
        return "done"

    context = Context(seams=Seams(fault=lambda state, when: calls.append((state, when))))
    assert step({"state": "Step"}, context) == "done"
    assert calls == [("Step", "before"), ("logic", ""), ("Step", "after")]


def test_a_fault_before_stops_the_side_effect_and_names_the_state() -> None:
    ran: list[str] = []

    def fault(state: str, when: str) -> None:
        raise Injected(f"{when} {state}")

    @phase
    def step(event: dict[str, Any]) -> None:
        ran.append("logic")

    with pytest.raises(Injected, match="before Step"):
        step({"state": "Step"}, Context(seams=Seams(fault=fault)))
    assert ran == []


def test_in_aws_there_are_no_seams_and_the_logic_runs_alone() -> None:
    @phase
    def step(event: dict[str, Any]) -> int:
        return 7

    context = AwsContext()
    assert runtime.seams(context) is runtime.NO_SEAMS
    assert step({"state": "Step"}, context) == 7


def _marks(aws: Any) -> dict[str, Any]:
    item = aws.get_item(
        TableName=TABLE, Key={"InstanceId": {"S": "in-flight/run-1"}}, ConsistentRead=True
    ).get("Item", {})
    return {k: v for k, v in item.items() if k.startswith(inflight.PREFIX)}


def test_a_changing_phase_in_a_parallel_branch_marks_itself_in_the_configured_table(
    aws: Any,
) -> None:
    seen: list[dict[str, Any]] = []

    @phase(changes=True)
    def step(event: dict[str, Any]) -> None:
        seen.append(_marks(aws))

    step({"state": "Step", "execution": "run-1", "inParallel": True}, Context())
    assert list(seen[0]) == [inflight.PREFIX + "request_1"]
    assert _marks(aws) == {}


def test_a_phase_starting_after_the_failure_path_looked_changes_nothing(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    ended: list[str] = []
    monkeypatch.setattr(inflight, "end", lambda *args: ended.append(str(args[-1])))

    @phase(changes=True)
    def step(event: dict[str, Any]) -> None:
        ran.append("logic")

    inflight.wait_for_others(aws, TABLE, "run-1", "rollback-request")
    with pytest.raises(BranchStopped, match=r"^Step: started after the run's failure path"):
        step({"state": "Step", "execution": "run-1", "inParallel": True}, Context())

    assert ran == []
    assert _marks(aws) == {}
    # No end for a mark it never set.
    assert ended == []


def test_outside_a_parallel_branch_no_mark_is_written(aws: Any) -> None:
    # A Task's Catch runs only once its function returned: nothing can still be running.
    seen: list[dict[str, Any]] = []

    @phase(changes=True)
    def step(event: dict[str, Any]) -> None:
        seen.append(_marks(aws))

    step({"state": "Step", "execution": "run-1"}, Context())
    assert seen == [{}]
    item = aws.get_item(TableName=TABLE, Key={"InstanceId": {"S": "in-flight/run-1"}})
    assert "Item" not in item


def test_only_a_retry_count_of_zero_is_a_first_attempt() -> None:
    assert runtime.first_attempt({"retryCount": 0})
    assert not runtime.first_attempt({"retryCount": 1})
    # No count (a test, the janitor) and a false that equals 0 are both treated as retries.
    assert not runtime.first_attempt({})
    assert not runtime.first_attempt({"retryCount": False})


def test_the_sleep_seam_times_the_phase_waits_for_a_new_id() -> None:
    slept: list[float] = []
    not_yet = ClientError({"Error": {"Code": "InvalidGroup.NotFound"}}, "Describe")
    answers: Iterator[ClientError | int] = iter([not_yet, 1])

    def describe() -> int:
        answer = next(answers)
        if isinstance(answer, ClientError):
            raise answer
        return answer

    @phase
    def step(event: dict[str, Any]) -> int:
        return consistency.settled(describe)

    assert step({"state": "Step"}, Context(seams=Seams(sleep=slept.append))) == 1
    assert slept == [consistency.DELAYS[0]]
