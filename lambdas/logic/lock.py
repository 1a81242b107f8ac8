"""One execution per instance: a conditional put in DynamoDB, released by the same execution."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lambdas.errors import InstanceLocked
from lambdas.names import LOCK_EXPIRY, LOCK_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than the state machine's timeout, so a crashed run's lock expires by itself even if
# the janitor never ran; the janitor releases it much sooner.
LOCK_SECONDS = 6 * 3600


def acquire(dynamodb: DynamoDBClient, table: str, instance_id: str, execution_arn: str) -> None:
    now = int(time.time())
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                LOCK_KEY: {"S": instance_id},
                "ExecutionArn": {"S": execution_arn},
                "LockedAt": {"N": str(now)},
                LOCK_EXPIRY: {"N": str(now + LOCK_SECONDS)},
            },
            # A retried Preflight of the same execution may take its own lock again.
            ConditionExpression=(
                f"attribute_not_exists({LOCK_KEY}) OR ExecutionArn = :me OR {LOCK_EXPIRY} < :now"
            ),
            ExpressionAttributeValues={":me": {"S": execution_arn}, ":now": {"N": str(now)}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        other = holder(dynamodb, table, instance_id) or "another execution"
        raise InstanceLocked(
            f"InstanceId: {instance_id} is being reset by {other}; wait for it to finish, "
            "or stop it (the janitor then restores the instance and releases the lock)"
        ) from None


def holder(dynamodb: DynamoDBClient, table: str, instance_id: str) -> str | None:
    """The execution ARN that holds the lock on this instance, if any."""
    item = dynamodb.get_item(
        TableName=table, Key={LOCK_KEY: {"S": instance_id}}, ConsistentRead=True
    ).get("Item", {})
    value = item.get("ExecutionArn", {}).get("S")
    return str(value) if value else None


def release(dynamodb: DynamoDBClient, table: str, instance_id: str, execution_arn: str) -> bool:
    """Make sure this execution no longer holds the lock. True when it does not any more
    (released now, or by an earlier attempt); False when another execution holds it."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={LOCK_KEY: {"S": instance_id}},
            # A retried release finds no item: that is success, not someone else's lock.
            ConditionExpression=f"attribute_not_exists({LOCK_KEY}) OR ExecutionArn = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
        return True
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
