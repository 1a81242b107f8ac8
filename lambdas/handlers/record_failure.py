"""After rollback and cleanup: say what failed and where things are, release the lock."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic import inflight, lock
from lambdas.logic.failure import error_message, failure_result
from lambdas.logic.results import write_result
from lambdas.logic.rollback import where_things_are
from lambdas.plan import Plan
from lambdas.runtime import client, phase

CONFIG = Config.from_env()


@phase
def record_failure(event: dict[str, Any]) -> dict[str, Any]:
    run = event["run"]
    plan: Plan = run["plan"]
    error = run.get("error") or {}
    where = where_things_are(client("ec2"), plan)
    inflight.forget(client("dynamodb"), CONFIG.lock_table_name, plan["Execution"])
    released = lock.release(client("dynamodb"), CONFIG.lock_table_name, plan["InstanceId"],
                            plan["ExecutionArn"])
    result = failure_result(
        plan, str(error.get("Error", "Unknown")), error_message(error), where=where,
        rollback_error=error_message(run["rollbackError"]) if run.get("rollbackError") else None,
        cleanup_error=error_message(run["cleanupError"]) if run.get("cleanupError") else None,
        lock_released=released,
    )
    write_result(client("ssm"), plan["InstanceId"], result)
    return {"Error": str(error.get("Error", "ResetAccess.Failed")),
            "Cause": result["Cause"][:32000]}


handler = record_failure
