"""After rollback and cleanup: say what failed and where things are, release the lock."""

from __future__ import annotations

import json
from typing import Any

from lambdas.config import Config
from lambdas.logic import lock
from lambdas.logic.failure import failure_result
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
    where = where_things_are(client("ec2"), plan)
    released = lock.release(client("dynamodb"), CONFIG.lock_table_name, plan["InstanceId"],
                            plan["ExecutionArn"])
    result = failure_result(
        plan, str(error.get("Error", "Unknown")), _cause(error), where=where,
        rollback_error=_cause(run["rollbackError"]) if run.get("rollbackError") else None,
        cleanup_error=_cause(run["cleanupError"]) if run.get("cleanupError") else None,
        lock_released=released,
    )
    write_result(client("ssm"), plan["InstanceId"], result)
    return {"Error": str(error.get("Error", "ResetAccess.Failed")),
            "Cause": result["Cause"][:32000]}


handler = record_failure
