"""Side effects still in flight when the failure path starts.

When one branch of a Parallel fails, Step Functions stops the other branches, but a Lambda
invocation already running goes on to the end: a helper can be launched, a volume detached or
an instance stopped after Rollback looked at EC2. So every phase that changes something marks
itself in the lock table while it runs, and the failure path waits until no other mark of the
execution is left (or has outlived the longest a function may run).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lambdas.errors import NotReady
from lambdas.names import LOCK_EXPIRY, LOCK_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A phase's timeout is 60 s at most (statemachine/phases.py); an older mark is a crashed run's.
MARK_SECONDS = 90
# The marks' item goes by itself (the table's TTL) if nobody deletes it.
ITEM_SECONDS = 6 * 3600
PREFIX = "t_"


def _key(execution: str) -> dict[str, Any]:
    return {LOCK_KEY: {"S": f"in-flight/{execution}"}}


def _name(token: str) -> str:
    return PREFIX + "".join(c if c.isalnum() else "_" for c in token)


def begin(dynamodb: DynamoDBClient, table: str, execution: str, token: str) -> None:
    now = int(time.time())
    dynamodb.update_item(
        TableName=table,
        Key=_key(execution),
        UpdateExpression=f"SET #mark = :until, {LOCK_EXPIRY} = :expires",
        ExpressionAttributeNames={"#mark": _name(token)},
        ExpressionAttributeValues={
            ":until": {"N": str(now + MARK_SECONDS)},
            ":expires": {"N": str(now + ITEM_SECONDS)},
        },
    )


def end(dynamodb: DynamoDBClient, table: str, execution: str, token: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key=_key(execution),
        UpdateExpression="REMOVE #mark",
        ExpressionAttributeNames={"#mark": _name(token)},
    )


def wait_for_others(dynamodb: DynamoDBClient, table: str, execution: str, token: str) -> None:
    """NotReady while another phase of this execution may still be changing something."""
    item = dynamodb.get_item(TableName=table, Key=_key(execution), ConsistentRead=True).get(
        "Item", {}
    )
    now = time.time()
    running = [
        name
        for name, value in item.items()
        if name.startswith(PREFIX) and name != _name(token) and float(value.get("N", "0")) > now
    ]
    if running:
        raise NotReady(
            f"{len(running)} phase(s) of this execution still running; waiting for "
            "them before putting things back"
        )


def forget(dynamodb: DynamoDBClient, table: str, execution: str) -> None:
    """At the very end of a run: no phase of it runs any more."""
    dynamodb.delete_item(TableName=table, Key=_key(execution))
