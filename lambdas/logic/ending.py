"""How every run ends, whichever path ends it: PublishResult after a reset, RecordFailure after
the Catch path's rollback and cleanup, the janitor for an execution that ended without either.

The ending forgets the run's in-flight marks, releases its lock on the instance and writes its
result. Every step is idempotent, so a retried ending (Lambda, the ASL's Retry, a second
janitor) finds its earlier steps done and does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.logic import inflight, lock
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
) -> Finished:
    """End the run with a success's result, or with a failure's (a function of lock_released)."""
    instance_id = run.plan["InstanceId"]
    if callable(outcome):
        # A failure's result says whether the lock was released, so it is written after.
        released = _let_go(dynamodb, table, run)
        result = outcome(released)
        return Finished(result, write_result(ssm, instance_id, result), released)
    # A success releases the lock last: until then a failure still takes the Catch path, which
    # puts things back under that lock.
    parameter = write_result(ssm, instance_id, outcome)
    return Finished(outcome, parameter, _let_go(dynamodb, table, run))


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
    )
    return finished, where


def _let_go(dynamodb: DynamoDBClient, table: str, run: Run) -> bool:
    inflight.forget(dynamodb, table, run.execution)
    return lock.release(dynamodb, table, run.plan["InstanceId"], run.execution_arn)
