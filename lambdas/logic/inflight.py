"""Side effects still in flight when the failure path starts.

When one branch of a Parallel fails, Step Functions stops the other branches, but a Lambda
invocation already running goes on to the end: a helper can be launched, a volume detached or
an instance stopped after Rollback looked at EC2. So every phase that changes something marks
itself in the lock table while it runs, and the failure path waits until no other mark of the
execution is left (or has outlived the longest a function may run).

An invocation already dispatched when its branch stops may even start after the failure path
looked. So the failure path closes the marks as it reads them (one UpdateItem), and a phase
may mark itself only while they are open: one that starts later changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdas.errors import BranchStopped, NotReady
from lambdas.names import LOCK_EXPIRY, LOCK_KEY, in_flight_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A phase's timeout is 60 s at most (statemachine/phases.py); an older mark is a crashed run's.
MARK_SECONDS = 90
# The marks' item goes by itself (the table's TTL) if nobody deletes it.
ITEM_SECONDS = 6 * 3600
# A sealed item outlives any invocation that could still start: Lambda runs 15 minutes at most.
SEALED_SECONDS = 3600
PREFIX = "t_"
# Set by the failure path's first read (the time it closed the marks): no phase begins after.
CLOSED = "closed"


def _key(execution: str) -> dict[str, Any]:
    return {LOCK_KEY: {"S": in_flight_key(execution)}}


def _name(token: str) -> str:
    return PREFIX + "".join(c if c.isalnum() else "_" for c in token)


def begin(dynamodb: DynamoDBClient, table: str, execution: str, token: str) -> None:
    """Mark this phase in flight; BranchStopped once the failure path has closed the marks."""
    now = int(time.time())
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(execution),
            UpdateExpression=f"SET #mark = :until, {LOCK_EXPIRY} = :expires",
            ConditionExpression="attribute_not_exists(#closed)",
            ExpressionAttributeNames={"#mark": _name(token), "#closed": CLOSED},
            ExpressionAttributeValues={
                ":until": {"N": str(now + MARK_SECONDS)},
                ":expires": {"N": str(now + ITEM_SECONDS)},
            },
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        raise BranchStopped(
            "started after the run's failure path began putting things back: this phase of "
            "a stopped branch changes nothing"
        ) from None


def end(dynamodb: DynamoDBClient, table: str, execution: str, token: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key=_key(execution),
        UpdateExpression="REMOVE #mark",
        ExpressionAttributeNames={"#mark": _name(token)},
    )


def wait_for_others(
    dynamodb: DynamoDBClient,
    table: str,
    execution: str,
    token: str,
    clock: Callable[[], float] = time.time,
) -> None:
    """Close the marks (no phase begins any more), then NotReady while another phase of this
    execution that began before may still be changing something (`clock`: the caller's time,
    which the janitor's waits move on)."""
    now = clock()
    # One call closes and reads: a phase that begins between a read and a close could slip by.
    item = _close(dynamodb, table, execution, int(now), ITEM_SECONDS)
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


def seal(dynamodb: DynamoDBClient, table: str, execution: str) -> None:
    """At the very end of a run: close the marks for good, so that an invocation of a stopped
    branch that starts even after the ending changes nothing; the table's TTL removes the item."""
    _close(dynamodb, table, execution, int(time.time()), SEALED_SECONDS)


def _close(
    dynamodb: DynamoDBClient, table: str, execution: str, now: int, keep_seconds: int
) -> dict[str, Any]:
    """Close the marks (the first close's time is kept) and keep the item `keep_seconds` more;
    the item as it is now."""
    attributes: dict[str, Any] = dynamodb.update_item(
        TableName=table,
        Key=_key(execution),
        UpdateExpression=f"SET #closed = if_not_exists(#closed, :now), {LOCK_EXPIRY} = :expires",
        ExpressionAttributeNames={"#closed": CLOSED},
        ExpressionAttributeValues={
            ":now": {"N": str(now)},
            ":expires": {"N": str(now + keep_seconds)},
        },
        ReturnValues="ALL_NEW",
    ).get("Attributes", {})
    return attributes
