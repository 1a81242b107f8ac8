"""How every run ends, whichever path ends it: PublishResult after a reset, RecordFailure after
the Catch path's rollback and cleanup, the janitor for an execution that ended without either.

The ending seals the run's in-flight marks, records an alarm-started run's end for the
circuit breaker, releases its lock on the instance and writes its result. Every step is
idempotent, so a retried ending (Lambda, the ASL's Retry, a second janitor) finds its earlier
steps done and does the rest. Then it announces the end (SNS, metrics), which never fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.logic import breaker, inflight, lock, notify, telemetry
from lambdas.logic.failure import failure_result
from lambdas.logic.results import write_result
from lambdas.logic.rollback import where_things_are
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient


@dataclass(frozen=True)
class Run:
    """The run that ends: its plan, and the execution as its lock and in-flight marks name it."""

    plan: Plan
    execution: str
    execution_arn: str

    @classmethod
    def of(cls, plan: Plan) -> Run:
        """A run ended by its own workflow, whose plan names the execution."""
        return cls(plan, str(plan["Execution"]), str(plan["ExecutionArn"]))


@dataclass(frozen=True)
class Notices:
    """Where the end is announced: an SNS client and the stack's topic (empty: nowhere)."""

    sns: Any
    topic_arn: str


@dataclass(frozen=True)
class Finished:
    """What the ending did: the result as written, its parameter, whether the lock went."""

    result: dict[str, Any]
    parameter: str
    lock_released: bool


# A failure's result, made once the ending knows whether the lock was released.
FailureResult = Callable[[bool], dict[str, Any]]


def finish(
    ssm: SSMClient,
    dynamodb: DynamoDBClient,
    table: str,
    run: Run,
    outcome: dict[str, Any] | FailureResult,
    notices: Notices | None = None,
) -> Finished:
    """End the run with a success's result, or with a failure's (a function of lock_released)."""
    instance_id = run.plan["InstanceId"]
    if callable(outcome):
        # A failure's result says whether the lock was released, so it is written after.
        released = _let_go(dynamodb, table, run, failed=True)
        result = outcome(released)
        finished = Finished(result, write_result(ssm, instance_id, result), released)
    else:
        # A success releases the lock last: until then a failure still takes the Catch path,
        # which puts things back under that lock.
        parameter = write_result(ssm, instance_id, outcome)
        finished = Finished(outcome, parameter, _let_go(dynamodb, table, run, failed=False))
    announce(run, finished.result, notices)
    return finished


def announce(run: Run, result: dict[str, Any], notices: Notices | None) -> None:
    """Metrics and a message for the finished run; neither may change how it ended."""
    from lambdas.runtime import logger

    succeeded = result.get("Outcome") == "succeeded"
    attention = not succeeded and not (result.get("RolledBack") and result.get("CleanedUp"))
    outcome = "succeeded" if succeeded else "needs-attention" if attention else "rolled-back"
    try:
        telemetry.emit(
            outcome,
            {**result, "Mode": result.get("Mode") or run.plan.get("Mode")},
            result.get("DowntimeSeconds"),
        )
    except Exception as error:  # noqa: BLE001 - a metric lost is no reason to fail the run
        logger.warning("metrics not written", extra={"error": str(error)})
    if notices is None:
        return
    try:
        subject, message = (
            notify.succeeded(result) if succeeded else notify.failed(result, run.execution)
        )
    except Exception as error:  # noqa: BLE001 - nor is a message that could not be written
        logger.warning("notification not written", extra={"error": str(error)})
        return
    # A retried ending announces again: at least once, never not at all.
    notify.publish(notices.sns, notices.topic_arn, subject, message)


def fail(
    ec2: EC2Client,
    ssm: SSMClient,
    dynamodb: DynamoDBClient,
    table: str,
    run: Run,
    error: str,
    cause: str,
    *,
    rollback_error: str | None,
    cleanup_error: str | None,
    by: str = "workflow",
    notices: Notices | None = None,
    rollback_did: list[str] | None = None,
) -> tuple[Finished, str]:
    """End a failed run after its rollback and cleanup: (how it finished, where things are)."""
    # Read while the lock still keeps another execution off the instance.
    where = where_things_are(ec2, run.plan)
    finished = finish(
        ssm,
        dynamodb,
        table,
        run,
        lambda released: failure_result(
            run.plan,
            error,
            cause,
            where=where,
            rollback_error=rollback_error,
            cleanup_error=cleanup_error,
            lock_released=released,
            by=by,
            rollback_did=rollback_did,
        ),
        notices,
    )
    return finished, where


def _let_go(dynamodb: DynamoDBClient, table: str, run: Run, *, failed: bool) -> bool:
    inflight.seal(dynamodb, table, run.execution)
    if run.plan.get("Alarm"):
        # Recorded before the lock goes, so that no alarm passes the breaker in between.
        breaker.record(dynamodb, table, run.plan["InstanceId"], run.execution_arn, failed=failed)
    return lock.release(dynamodb, table, run.plan["InstanceId"], run.execution_arn)
