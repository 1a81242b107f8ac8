"""The circuit breaker on alarm-started resets: at most one per instance within a cooldown, and
none after a failed one until a person clears it.

An instance whose status check keeps failing after a reset, or an alarm that flaps, would
otherwise be stopped, started and backed up again and again. The breaker's state is one item
per instance in the lock table (`breaker/<instance ID>`), changed only by conditional writes,
so two alarms at once cannot both pass. Console, API and CLI starts never read it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.names import LOCK_KEY, breaker_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class Suppressed:
    """Why an alarm-started reset does not run."""

    reason: str


def clear_command(table: str, instance_id: str) -> str:
    """The AWS CLI command a person runs to let alarms reset the instance again."""
    return (
        f"aws dynamodb delete-item --table-name {table} "
        f'--key \'{{"{LOCK_KEY}": {{"S": "{breaker_key(instance_id)}"}}}}\''
    )


def admit(
    dynamodb: DynamoDBClient,
    table: str,
    instance_id: str,
    *,
    alarm: str,
    execution_arn: str,
    cooldown_seconds: int,
    now: float | None = None,
) -> Suppressed | None:
    """Record this alarm-started reset, or say why it must not run (None: it may run)."""
    at = int(time.time() if now is None else now)
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                LOCK_KEY: {"S": breaker_key(instance_id)},
                "ExecutionArn": {"S": execution_arn},
                "Alarm": {"S": alarm},
                "StartedAt": {"N": str(at)},
                "Status": {"S": RUNNING},
            },
            # A retried Preflight of the same execution passes again; a failure holds until
            # cleared; anything else only once the cooldown is over.
            ConditionExpression=(
                f"attribute_not_exists({LOCK_KEY}) OR ExecutionArn = :me OR "
                "(#status <> :failed AND StartedAt <= :cutoff)"
            ),
            ExpressionAttributeNames={"#status": "Status"},
            ExpressionAttributeValues={
                ":me": {"S": execution_arn},
                ":failed": {"S": FAILED},
                ":cutoff": {"N": str(at - cooldown_seconds)},
            },
        )
        return None
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return _why(dynamodb, table, instance_id, alarm, cooldown_seconds, at)


def _why(
    dynamodb: DynamoDBClient,
    table: str,
    instance_id: str,
    alarm: str,
    cooldown_seconds: int,
    now: int,
) -> Suppressed:
    item = dynamodb.get_item(
        TableName=table, Key={LOCK_KEY: {"S": breaker_key(instance_id)}}, ConsistentRead=True
    ).get("Item", {})
    status = item.get("Status", {}).get("S", RUNNING)
    last = item.get("ExecutionArn", {}).get("S", "an earlier execution")
    started = int(item.get("StartedAt", {}).get("N", now))
    if status == FAILED:
        return Suppressed(
            f"alarm {alarm} fired, but the last alarm-started reset of {instance_id} ({last}) "
            "failed; no alarm resets it until a person has looked and cleared that with: "
            f"{clear_command(table, instance_id)}"
        )
    wait = max(0, started + cooldown_seconds - now)
    return Suppressed(
        f"alarm {alarm} fired, but an alarm already reset {instance_id} "
        f"{_ago(now - started)} ago ({last}); at most one alarm-started reset per "
        f"{_ago(cooldown_seconds)}, the next possible in {_ago(wait)}; start one by hand "
        "if it is needed now"
    )


def _ago(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def record(
    dynamodb: DynamoDBClient, table: str, instance_id: str, execution_arn: str, *, failed: bool
) -> None:
    """How this execution's alarm-started reset ended; another execution's record stays."""
    # Not ours when a person cleared it meanwhile (or a later run's record is there).
    with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.update_item(
            TableName=table,
            Key={LOCK_KEY: {"S": breaker_key(instance_id)}},
            UpdateExpression="SET #status = :status",
            ConditionExpression="ExecutionArn = :me",
            ExpressionAttributeNames={"#status": "Status"},
            ExpressionAttributeValues={
                ":status": {"S": FAILED if failed else SUCCEEDED},
                ":me": {"S": execution_arn},
            },
        )


def withdraw(dynamodb: DynamoDBClient, table: str, instance_id: str, execution_arn: str) -> None:
    """Forget this execution's admission (it ended before changing anything)."""
    with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.delete_item(
            TableName=table,
            Key={LOCK_KEY: {"S": breaker_key(instance_id)}},
            ConditionExpression="ExecutionArn = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
