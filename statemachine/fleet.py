"""The fleet workflow, ResetAccessFleet: resolve the targets, then one ResetAccess execution per
instance from a Distributed Map, at most MaxConcurrency at once, none started once more than
MaxErrors have failed; then the fleet's result.

Built like statemachine/definition.py; `render()` is the JSON the stack deploys and the local
engine runs, with `${...}` placeholders for the two functions and the lock table.

Why a Distributed Map: an Inline Map runs at most 40 iterations at once and keeps every
iteration's events in the fleet's own 25,000-event history; a Distributed Map runs each
instance's iteration as a child execution with its own history, up to 10,000 at once (AWS Step
Functions Developer Guide, "Using Map state in Distributed mode").

MaxErrors as SSM Automation has it (stop starting new ones, let running ones finish) is not
ToleratedFailureCount: a Map Run over its tolerance fails and stops its running iterations. So
each iteration catches its reset's failure and counts it in the lock table, and an iteration
reads that count before it starts its reset.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas.names import LOCK_KEY
from statemachine.phases import (
    CHECK_ELSEWHERE,
    PUBLISH_FLEET_RESULT,
    RESOLVE_TARGETS,
    START_ELSEWHERE,
)
from statemachine.policies import catch, poll
from statemachine.states import State, choice, fail, task

TIMEOUT_SECONDS = 24 * 3600
LOCK_TABLE = "${LockTableName}"
COUNTER_KEY = {LOCK_KEY: {"S.$": "$.fleet.CounterKey"}}
# Step Functions' own integrations: a DynamoDB call, and a nested execution waited for with
# its output as JSON (`.sync:2`).
GET_ITEM = "arn:aws:states:::dynamodb:getItem"
UPDATE_ITEM = "arn:aws:states:::dynamodb:updateItem"
START_AND_WAIT = "arn:aws:states:::states:startExecution.sync:2"
# DynamoDB's throttling and server errors, retried (Step Functions names them DynamoDB.<Code>).
DYNAMODB_TRANSIENT = {
    "ErrorEquals": [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.InternalServerErrorException",
        "DynamoDB.RequestLimitExceeded",
    ],
    "IntervalSeconds": 1,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
# Too many executions at once in the member account: wait and start again (no child was made).
START_THROTTLED = {
    "ErrorEquals": ["StepFunctions.ExecutionLimitExceededException"],
    "IntervalSeconds": 5,
    "MaxAttempts": 8,
    "BackoffRate": 2,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}

# A child in another Region, polled until it ends: from 15 s up to every minute, for as long as
# a ResetAccess execution may run (statemachine/definition.py's TimeoutSeconds, 2 h).
CHILD_ENDED = poll(15, 130, 1.5, 60)
TARGET = {"target.$": "$.target"}


def _reset(credentials: bool) -> State:
    """Start the instance's ResetAccess execution and wait for it; a failure is counted."""
    state: State = {
        "Type": "Task",
        "Resource": START_AND_WAIT,
        "Parameters": {
            "StateMachineArn.$": "$.target.StateMachineArn",
            "Name.$": "$.target.Name",
            "Input.$": "$.target.Input",
        },
    }
    if credentials:
        state["Credentials"] = {"RoleArn.$": "$.target.RoleArn"}
    state.update(
        {
            "ResultSelector": {"Status.$": "$.Status", "Output.$": "$.Output"},
            "ResultPath": "$.child",
            "Retry": [START_THROTTLED],
            "Catch": [catch("CountError")],
            "End": True,
        }
    )
    return state


def _iteration() -> dict[str, Any]:
    """One instance: read the fleet's error count, then reset it or leave it alone."""
    return {
        "StartAt": "ErrorsSoFar",
        "States": {
            "ErrorsSoFar": {
                "Type": "Task",
                "Comment": "The fleet's failed resets so far (consistent read).",
                "Resource": GET_ITEM,
                "Parameters": {"TableName": LOCK_TABLE, "Key": COUNTER_KEY, "ConsistentRead": True},
                "ResultSelector": {"count.$": "States.StringToJson($.Item.errors.N)"},
                "ResultPath": "$.errors",
                "Retry": [DYNAMODB_TRANSIENT],
                "Next": "WithinMaxErrors",
            },
            "WithinMaxErrors": choice(
                "Where",
                ("$.errors.count", "NumericGreaterThanPath", "$.fleet.MaxErrors", "NotAttempted"),
                comment="More failures than MaxErrors: start no new reset (running ones finish).",
            ),
            "NotAttempted": {
                "Type": "Pass",
                "Parameters": {"target.$": "$.target", "skipped": True},
                "End": True,
            },
            "Where": choice(
                "ResetHere",
                ("$.target.Remote", "IsPresent", True, "StartElsewhere"),
                ("$.target.RoleArn", "IsPresent", True, "ResetInMemberAccount"),
            ),
            "ResetHere": _reset(credentials=False),
            "ResetInMemberAccount": _reset(credentials=True),
            # Step Functions' StartExecution integration reaches only its own Region.
            "StartElsewhere": task(
                START_ELSEWHERE,
                result="$.started",
                params=TARGET,
                then="CheckElsewhere",
                catches=[catch("CountError")],
                comment="Start the instance's ResetAccess in its Region (as its member role).",
            ),
            "CheckElsewhere": task(
                CHECK_ELSEWHERE,
                result="$.child",
                params={**TARGET, "started.$": "$.started"},
                then="EndedElsewhere",
                poll=CHILD_ENDED,
                catches=[catch("CountError")],
                comment="Until that execution ends; its status and output.",
            ),
            "EndedElsewhere": choice(
                "CountError",
                ("$.child.Status", "StringEquals", "SUCCEEDED", "ResetElsewhere"),
            ),
            "ResetElsewhere": {"Type": "Succeed"},
            "CountError": {
                "Type": "Task",
                "Resource": UPDATE_ITEM,
                "Parameters": {
                    "TableName": LOCK_TABLE,
                    "Key": COUNTER_KEY,
                    "UpdateExpression": "ADD errors :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                },
                "ResultPath": None,
                "Retry": [DYNAMODB_TRANSIENT],
                "End": True,
            },
        },
    }


def definition() -> dict[str, Any]:
    iteration = _iteration()
    return {
        "Comment": "ResetAccessFleet: ResetAccess for many instances, accounts and Regions, "
        "with SSM Automation's Targets, MaxConcurrency and MaxErrors. See README.md.",
        "StartAt": "ResolveTargets",
        "TimeoutSeconds": TIMEOUT_SECONDS,
        "States": {
            "ResolveTargets": task(
                RESOLVE_TARGETS,
                result="$",
                params={"executionArn.$": "$$.Execution.Id", "input.$": "$"},
                then="ResetEach",
                catches=[catch("Refused", result_path="$")],
                comment="Validate, find the instances (every page, account and Region).",
            ),
            "Refused": fail("$.Error", "$.Cause", "Refused before any reset started."),
            "ResetEach": {
                "Type": "Map",
                "Comment": "One ResetAccess execution per instance.",
                "ItemsPath": "$.targets",
                "ItemSelector": {"target.$": "$$.Map.Item.Value", "fleet.$": "$.fleet"},
                "MaxConcurrencyPath": "$.fleet.MaxConcurrency",
                "Label": "Reset",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **iteration,
                },
                "ResultSelector": {"items.$": "$"},
                # Each item's result holds its target: it takes the targets' place, so the
                # state carries one copy (Step Functions' 256 KiB state limit).
                "ResultPath": "$.targets",
                "Next": "PublishFleetResult",
            },
            "PublishFleetResult": task(
                PUBLISH_FLEET_RESULT,
                result="$",
                params={"results.$": "$.targets.items", "fleet.$": "$.fleet"},
                then="FleetOutcome",
            ),
            "FleetOutcome": choice(
                "FleetFailed", ("$.Status", "StringEquals", "SUCCEEDED", "FleetSucceeded")
            ),
            "FleetSucceeded": {"Type": "Succeed"},
            "FleetFailed": fail(
                "$.Error", "$.Cause", "Some resets failed or were not attempted; see the result."
            ),
        },
    }


def render() -> str:
    """The fleet definition as JSON text, `${...}` placeholders in it."""
    return json.dumps(definition(), indent=2, ensure_ascii=False) + "\n"
