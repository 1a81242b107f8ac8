"""A fleet's reset in another Region: Step Functions' `states:startExecution` integration (and a
Task's `Credentials.RoleArn`) reach only the fleet's own Region, so for a target elsewhere a
small function starts its ResetAccess execution there and another follows it to its end (the
pattern of CDK's CallAwsServiceCrossRegion: a Lambda function makes the call in that Region).

In another account, both act as the member stack's role there, which may only start, describe
and stop ResetAccess executions and read instances.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.errors import InvalidInput, NotReady

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# DescribeExecution statuses of an execution that still runs (PENDING_REDRIVE: redriven).
RUNNING = ("RUNNING", "PENDING_REDRIVE")


def execution_arn(state_machine_arn: str, name: str) -> str:
    """An execution's ARN from its state machine's and its name (Step Functions' own form)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def start(sfn: SFNClient, target: dict[str, Any]) -> str:
    """Start the target's ResetAccess execution; a retried start finds the one it made."""
    machine = str(target["StateMachineArn"])
    name = str(target["Name"])
    try:
        return sfn.start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(target["Input"])
        )["executionArn"]
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "ExecutionAlreadyExists":
            # The name is the fleet's and the instance's: this iteration started it already.
            return execution_arn(machine, name)
        if code == "StateMachineDoesNotExist":
            raise InvalidInput(missing_stack(target)) from None
        raise


def outcome(sfn: SFNClient, arn: str) -> dict[str, Any]:
    """The child's end as the fleet's result reads it; NotReady while it runs."""
    described = sfn.describe_execution(executionArn=arn)
    status = described["status"]
    if status in RUNNING:
        raise NotReady(f"{arn.rsplit(':', 1)[-1]} is {status}")
    result: dict[str, Any] = {"Status": status, "ExecutionArn": arn}
    if described.get("output"):
        result["Output"] = json.loads(described["output"])
    for key in ("error", "cause"):
        if described.get(key):
            result[key.capitalize()] = str(described[key])[:300]
    return result


def missing_stack(target: dict[str, Any]) -> str:
    """What to deploy where, when the target's ResetAccess is not there."""
    account, region = target.get("Account"), target.get("Region")
    return (
        f"TargetLocations: no ResetAccess state machine in {account}/{region}; deploy the "
        f"member stack there (cdk deploy -c deployment=member -c fleetAccount=<this account>, "
        f"env {account}/{region})"
    )
