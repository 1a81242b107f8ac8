"""The result parameter fits a standard parameter with the longest AWS messages, resource
names made from any execution name are names AWS accepts, and the names users see stay put."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from lambdas import names
from lambdas.logic.failure import failure_result
from lambdas.logic.results import CUT_MARK, write_result
from lambdas.names import EXECUTION_TAG, pending_parameter, resource_name
from local import aws_rules

PLAN: Any = {
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:ResetAccess:x",
    "InstanceId": "i-0123456789abcdef0",
}
# AccessDenied with the encoded authorization message EC2 adds: 1-2.5 KB each.
ACCESS_DENIED = (
    "AttachVolume failed with UnauthorizedOperation: You are not authorized to perform this "
    "operation. User: arn:aws:sts::123456789012:assumed-role/ResetAccess-AttachVolumeRole/"
    "ResetAccess-AttachVolume is not authorized to perform: ec2:AttachVolume on resource: "
    "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0 because no "
    "identity-based policy allows the ec2:AttachVolume action. Encoded authorization failure "
    "message: " + "Xq8_-Zr2" * 300
)


class CheckedSsm:
    """An SSM client that refuses what AWS refuses and keeps what it accepts."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.values: dict[str, str] = {}

    def put_parameter(self, **params: Any) -> None:
        aws_rules.check(self.client, "PutParameter", params)
        self.values[params["Name"]] = params["Value"]


def test_a_failure_with_the_longest_messages_is_still_recorded() -> None:
    ssm: Any = CheckedSsm()  # an SSM client as far as write_result looks
    result = failure_result(
        PLAN,
        "AwsError",
        ACCESS_DENIED,
        where="i-0123 is stopped; its root volume is attached at /dev/xvda",
        rollback_error=ACCESS_DENIED,
        cleanup_error=ACCESS_DENIED,
        lock_released=True,
    )

    name = write_result(ssm, PLAN["InstanceId"], result)

    stored = json.loads(ssm.values[name])
    assert len(ssm.values[name].encode()) <= 4096
    assert stored["Outcome"] == "failed" and stored["RolledBack"] is False
    assert stored["Truncated"] == ["Cause"]
    # The first error is kept; the cut says where the rest is.
    assert stored["Cause"].startswith(ACCESS_DENIED[:200]) and stored["Cause"].endswith(CUT_MARK)


def test_a_result_that_fits_is_stored_whole() -> None:
    ssm: Any = CheckedSsm()  # an SSM client as far as write_result looks
    result = failure_result(
        PLAN,
        "AwsError",
        "short",
        where="here",
        rollback_error=None,
        cleanup_error=None,
        lock_released=True,
    )
    name = write_result(ssm, PLAN["InstanceId"], result)
    assert json.loads(ssm.values[name]) == result


@pytest.mark.parametrize(
    "execution",
    [
        "local-0123abcd",
        "reset+1=(web)@home!'s",
        "réinitialiser-clé",
        "a" * 80,
        "é" * 80,
        "+",
        "aws",
        "sg-1",
    ],
)
def test_resource_names_from_any_execution_name_are_accepted(execution: str) -> None:
    name = resource_name(execution)
    assert 1 <= len(name) <= 80
    assert aws_rules.parameter_name_refusal(pending_parameter("i-1", name), reading=False) is None
    assert (
        aws_rules.refusal(
            "ec2", "CreateSecurityGroup", {"GroupName": f"reset-access-{name}", "Description": "d"}
        )
        is None
    )
    assert (
        aws_rules.refusal(
            "ec2",
            "CreateTags",
            {"Resources": ["i-1"], "Tags": [{"Key": EXECUTION_TAG, "Value": name}]},
        )
        is None
    )


def test_names_that_differ_only_in_refused_characters_stay_distinct() -> None:
    assert resource_name("run+1") != resource_name("run=1") != resource_name("run-1")
    assert resource_name("local-0123abcd") == "local-0123abcd"


def test_the_names_people_and_scripts_rely_on_keep_their_values() -> None:
    """AWS's runbook and Windows tool chose these (docs/runbook.md); users' scripts read them."""
    assert names.key_parameter("i-0123456789abcdef0") == "/ec2rl/openssh/i-0123456789abcdef0/key"
    assert names.password_parameter("i-1") == "/EC2Rescue/Passwords/i-1"
    assert names.result_parameter("i-1") == "/reset-access/i-1/result"
    assert names.WINDOWS_TOOL_DOCUMENT == "AWSSupport-RunEC2RescueForWindowsTool"
    assert names.ubuntu_ami_parameter("arm64") == (
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id"
    )
    # Tags and the stack name that alarms, IAM conditions and deployed stacks already carry.
    assert (names.EXECUTION_TAG, names.OPT_IN_TAG, names.STACK_NAME) == (
        "ResetAccess:Execution",
        "ResetAccess:AutoRecover",
        "ResetAccess",
    )


@pytest.mark.parametrize(
    ("replaced", "seconds"),
    [
        # EC2's own times: StartTime to CompleteTime, whatever the poll saw later.
        (
            {
                "StartTime": "2026-03-14T15:06:38Z",
                "CompleteTime": "2026-03-14T15:07:20.500Z",
                "At": 1773500900.0,
            },
            42.5,
        ),
        # No CompleteTime: up to when WaitRootReplaced saw the task succeeded.
        ({"StartTime": "2026-03-14T15:06:38Z", "At": 1773500848.0}, 50.0),
        # A start time the run cannot read: unknown, never a false 0.
        ({"StartTime": "14/03/2026 15:06", "At": 1773500848.0}, None),
        ({"At": 1773500848.0}, None),
    ],
)
def test_replace_roots_downtime_is_the_replacement_task(
    replaced: dict[str, Any], seconds: float | None
) -> None:
    from lambdas.logic.results import downtime_seconds

    state = {"plan": {"Mode": "replace-root"}, "finished": {"replaced": replaced}}
    assert downtime_seconds(state) == seconds
