"""After rollback and cleanup: say what failed and where things are, release the lock."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic.ending import Notices, Run, fail
from lambdas.logic.failure import error_message
from lambdas.plan import Plan
from lambdas.runtime import client, phase

CONFIG = Config.from_env()


@phase
def record_failure(event: dict[str, Any]) -> dict[str, Any]:
    run = event["run"]
    plan: Plan = run["plan"]
    error = run.get("error") or {}
    finished, _ = fail(
        client("ec2"),
        client("ssm"),
        client("dynamodb"),
        CONFIG.lock_table_name,
        Run.of(plan),
        str(error.get("Error", "Unknown")),
        error_message(error),
        rollback_error=error_message(run["rollbackError"]) if run.get("rollbackError") else None,
        cleanup_error=error_message(run["cleanupError"]) if run.get("cleanupError") else None,
        notices=Notices(client("sns"), CONFIG.notify_topic_arn),
        rollback_did=(run.get("rollback") or {}).get("Did"),
    )
    return {
        "Error": str(error.get("Error", "ResetAccess.Failed")),
        "Cause": finished.result["Cause"][:32000],
    }


handler = record_failure
