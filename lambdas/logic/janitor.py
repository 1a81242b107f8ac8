"""The janitor: after an execution ends without its own Catch path finishing (aborted, timed
out, or failed before RecordFailure), do what Rollback, CleanUpAfterFailure and RecordFailure
would have done, for that execution and only that one.

It trusts the execution's history for the plan (what the instance looked like before) and EC2
for everything else, like Rollback. Every step is idempotent, so a second janitor for the same
execution (EventBridge and Lambda both retry) finds nothing left to do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from botocore.exceptions import ClientError

from lambdas.errors import InvalidInput, NotReady, ResetAccessError
from lambdas.logic import inflight, lock
from lambdas.logic.cleanup import cleanup
from lambdas.logic.ending import Notices, Run, fail
from lambdas.logic.failure import error_message
from lambdas.logic.inputs import parse_request
from lambdas.logic.rollback import rollback
from lambdas.names import JANITOR_STATUSES, resource_name
from lambdas.plan import PlanHeader, is_reset

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient

# States whose successful exit means the execution recorded its own end and released the lock.
RECORDED = ("RecordFailure", "PublishResult")
# A phase Lambda keeps running after its execution is stopped: wait out the longest phase that
# creates something (LaunchHelper, PrepareNetwork, Preflight's lock: 60 s, statemachine/phases.py)
# before looking, or its late resource would be created after the cleanup.
IN_FLIGHT_SECONDS = 65.0
# Between polls of EC2 while a detach, attach, start or termination goes on.
POLL_SECONDS = (2.0, 3.0, 5.0, 5.0, 10.0, 15.0)
# Keep this much of the invocation for the last call and the error report.
MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Ended:
    """What the janitor needs to know of one ended execution."""

    arn: str
    name: str
    status: str
    stopped_at: float | None
    input: Any
    plan: PlanHeader | None
    recorded: bool
    last_error: dict[str, str]


@dataclass(frozen=True)
class Clock:
    """Time as the janitor sees it: the local engine passes one that never sleeps."""

    now: Callable[[], float]
    sleep: Callable[[float], None]
    remaining: Callable[[], float]


def read_execution(sfn: SFNClient, execution_arn: str) -> Ended:
    described = sfn.describe_execution(executionArn=execution_arn)
    plan: PlanHeader | None = None
    recorded = False
    last_error: dict[str, str] = {}
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=True):
        for event in page["events"]:
            exited = event.get("stateExitedEventDetails")
            if exited and exited.get("name") == "Preflight":
                plan = _plan_of(exited.get("output"))
            elif exited and exited.get("name") in RECORDED:
                recorded = True
            for key, details in event.items():
                if key.endswith("FailedEventDetails") or key.endswith("TimedOutEventDetails"):
                    # A function's Cause is its error as JSON: keep the sentence.
                    last_error = {
                        "Error": str(details.get("error", "")),
                        "Cause": error_message({"Cause": details.get("cause", "")}),
                    }
    raw_input = described.get("input")
    try:
        execution_input = json.loads(raw_input) if raw_input else None
    except ValueError:
        execution_input = None
    stopped = described.get("stopDate")
    return Ended(
        arn=execution_arn,
        # The form the phases saw, which tags and parameter names carry.
        name=resource_name(str(described.get("name") or execution_arn.rsplit(":", 1)[-1])),
        status=str(described["status"]),
        stopped_at=stopped.timestamp() if isinstance(stopped, datetime) else None,
        input=execution_input,
        plan=plan,
        recorded=recorded,
        last_error=last_error,
    )


def _plan_of(output: Any) -> PlanHeader | None:
    try:
        data = json.loads(output) if isinstance(output, str) else None
    except ValueError:
        return None
    plan = data.get("plan") if isinstance(data, dict) else None
    # Preflight's own output, as the execution's history kept it.
    return cast("PlanHeader", plan) if isinstance(plan, dict) and "InstanceId" in plan else None


def clean_up_after(
    ec2: EC2Client,
    ssm: SSMClient,
    dynamodb: DynamoDBClient,
    sfn: SFNClient,
    table: str,
    event: dict[str, Any],
    clock: Clock,
    state_machine_arn: str = "",
    notices: Notices | None = None,
) -> dict[str, Any]:
    """Handle one Execution Status Change event; returns what it did, for the log."""
    # EventBridge's Step Functions Execution Status Change event.
    status_change = EventBridgeEvent(event)
    detail = status_change.detail if isinstance(event.get("detail"), dict) else {}
    execution_arn = detail.get("executionArn")
    if not isinstance(execution_arn, str):
        return {"Action": "ignored", "Reason": "no executionArn in the event"}
    if state_machine_arn and detail.get("stateMachineArn") != state_machine_arn:
        return {"Action": "ignored", "Reason": "another state machine's execution"}

    ended = read_execution(sfn, execution_arn)
    if ended.status not in JANITOR_STATUSES:
        return {"Action": "ignored", "Reason": f"execution is {ended.status}"}
    if ended.recorded:
        # The workflow's own Catch path finished: lock released, result written.
        return {"Action": "none", "Reason": "the execution recorded its own end"}
    if ended.stopped_at is not None:
        clock.sleep(max(0.0, ended.stopped_at + IN_FLIGHT_SECONDS - clock.now()))

    plan = ended.plan
    if not is_reset(plan):
        # Preflight never handed over a plan, so nothing moved; it may still have taken the
        # lock before it failed or was stopped.
        instance_id = plan["InstanceId"] if plan else _instance_of(ended.input)
        released = bool(instance_id) and _release(dynamodb, table, str(instance_id), ended.arn)
        return {"Action": "lock only", "InstanceId": instance_id, "LockReleased": released}

    # The last call's answer says what the rollback put back (the result's RollbackDid).
    rolled: dict[str, Any] = {}

    def roll_back() -> None:
        # A phase of the stopped run may still be running, or start later: close its marks,
        # and wait for those that began, before looking at EC2 (lambdas/logic/inflight.py).
        inflight.wait_for_others(dynamodb, table, ended.name, "janitor", clock.now)
        rolled.update(rollback(ec2, plan))

    rollback_error = _until_done(roll_back, clock, "rollback")
    cleanup_error = _until_done(
        lambda: cleanup(ec2, ssm, ended.name, plan["InstanceId"], discard_pending_key=True),
        clock,
        "cleanup",
    )
    error = _ending(ended)
    finished, where = fail(
        ec2,
        ssm,
        dynamodb,
        table,
        Run(plan, ended.name, ended.arn),
        error["Error"],
        error["Cause"],
        rollback_error=rollback_error,
        cleanup_error=cleanup_error,
        by="janitor",
        notices=notices,
        rollback_did=rolled.get("Did") if rollback_error is None else None,
    )
    return {
        "Action": "rolled back",
        "InstanceId": plan["InstanceId"],
        "RolledBack": rollback_error is None,
        "RollbackDid": finished.result.get("RollbackDid", []),
        "CleanedUp": cleanup_error is None,
        "LockReleased": finished.lock_released,
        "Now": where,
    }


def _ending(ended: Ended) -> dict[str, str]:
    """The error the result names: the execution's own for FAILED, else how it was ended."""
    if ended.status == "FAILED" and ended.last_error:
        return ended.last_error
    how = {"ABORTED": "ExecutionAborted", "TIMED_OUT": "ExecutionTimedOut"}.get(
        ended.status, "ExecutionFailed"
    )
    cause = f"the execution ended {ended.status}"
    if ended.last_error:
        cause += f" after {ended.last_error['Error']}: {ended.last_error['Cause']}"
    return {"Error": how, "Cause": cause}


def _until_done(step: Callable[[], Any], clock: Clock, what: str) -> str | None:
    """Call a one-step-per-call function until it stops raising NotReady.

    Returns None when done, or the error that stopped it (the run goes on to clean up, like
    the ASL's Catch). Out of time, NotReady propagates: Lambda's async retry calls the janitor
    again and every step resumes from what EC2 says.
    """
    attempt = 0
    while True:
        try:
            step()
            return None
        except NotReady:
            pause = POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)]
            if clock.remaining() < pause + MARGIN_SECONDS:
                raise
            clock.sleep(pause)
            attempt += 1
        except (ResetAccessError, ClientError) as error:
            # Like the ASL's Catch on Rollback: say so in the result, and still clean up.
            return f"{what}: {error}"


def _instance_of(execution_input: Any) -> str | None:
    try:
        return parse_request(execution_input).instance_id
    except InvalidInput:
        return None


def _release(dynamodb: DynamoDBClient, table: str, instance_id: str, execution_arn: str) -> bool:
    """Delete only a lock this execution holds; a read first keeps the common case (no lock,
    or another execution's) free of writes."""
    if lock.holder(dynamodb, table, instance_id) != execution_arn:
        return False
    return lock.release(dynamodb, table, instance_id, execution_arn)


def real_clock(remaining_ms: Callable[[], int] | None) -> Clock:
    start = time.monotonic()

    def remaining() -> float:
        if remaining_ms is not None:
            return remaining_ms() / 1000.0
        return 900.0 - (time.monotonic() - start)

    return Clock(now=time.time, sleep=time.sleep, remaining=remaining)
