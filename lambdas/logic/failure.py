"""The result of a failed run, as RecordFailure and the janitor both write it."""

from __future__ import annotations

import json
from typing import Any

from lambdas import timestamps
from lambdas.plan import PlanHeader


def error_message(error: dict[str, Any]) -> str:
    """A Catch's Cause is a Lambda error's JSON payload; a person wants its message."""
    cause = str(error.get("Cause", ""))
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else cause


def failure_result(
    plan: PlanHeader,
    error: str,
    cause: str,
    *,
    where: str,
    rollback_error: str | None,
    cleanup_error: str | None,
    lock_released: bool,
    by: str = "workflow",
    rollback_did: list[str] | None = None,
) -> dict[str, Any]:
    """The result of a failed run, as RecordFailure and the janitor both write it.

    by: who wrote it ("workflow" or "janitor"), so a person reading it knows which path ran.
    """
    parts = [cause or "unknown failure"]
    if rollback_error:
        parts.append(f"rollback failed: {rollback_error}")
    if cleanup_error:
        parts.append(f"cleanup failed: {cleanup_error}")
    parts.append(f"now: {where}")
    result = {
        "ExecutionArn": plan["ExecutionArn"],
        "Outcome": "failed",
        "InstanceId": plan["InstanceId"],
        "Error": error or "Unknown",
        "Cause": " | ".join(parts),
        "RolledBack": not rollback_error,
        "CleanedUp": not cleanup_error,
        "LockReleased": lock_released,
        "RecordedBy": by,
        "FinishedAt": timestamps.now(),
    }
    if rollback_did:
        # What the rollback did, step by step (replace-root: the tasks, the copy deleted).
        result["RollbackDid"] = rollback_did
    return result
