"""After rollback and cleanup: say what failed and where things are, release the lock."""

from __future__ import annotations

import json
import time
from typing import Any

from lambdas.config import Config
from lambdas.logic import lock
from lambdas.logic.results import write_result
from lambdas.logic.rollback import where_things_are
from lambdas.runtime import client, phase

CONFIG = Config.from_env()


def _cause(error: dict[str, Any]) -> str:
    """A Lambda error's Cause is its JSON payload; a person wants the message."""
    cause = str(error.get("Cause", ""))
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else cause


@phase
def record_failure(event: dict[str, Any]) -> dict[str, Any]:
    run = event["run"]
    plan = run["plan"]
    error = run.get("error") or {}
    parts = [_cause(error) or "unknown failure"]
    for label, key in (("rollback failed", "rollbackError"), ("cleanup failed", "cleanupError")):
        if run.get(key):
            parts.append(f"{label}: {_cause(run[key])}")
    where = where_things_are(client("ec2"), plan)
    parts.append(f"now: {where}")
    released = lock.release(client("dynamodb"), CONFIG.lock_table_name, plan["InstanceId"],
                            plan["ExecutionArn"])
    cause = " | ".join(parts)
    write_result(client("ssm"), plan["InstanceId"], {
        "ExecutionArn": plan["ExecutionArn"],
        "Outcome": "failed",
        "InstanceId": plan["InstanceId"],
        "Error": error.get("Error", "Unknown"),
        "Cause": cause,
        "RolledBack": not run.get("rollbackError"),
        "CleanedUp": not run.get("cleanupError"),
        "LockReleased": released,
        "FinishedAt": int(time.time()),
    })
    return {"Error": str(error.get("Error", "ResetAccess.Failed")), "Cause": cause[:32000]}


handler = record_failure
