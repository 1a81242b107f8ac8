"""Preflight: validate the input, inspect the instance, take the lock, return the plan."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic import lock
from lambdas.logic.inputs import parse_request
from lambdas.logic.preflight import plan_reset
from lambdas.runtime import client, logger, phase

CONFIG = Config.from_env()


@phase
def preflight(event: dict[str, Any]) -> dict[str, Any]:
    request = parse_request(event.get("input"))
    plan = plan_reset(
        request,
        ec2=client("ec2"),
        ssm=client("ssm"),
        kms=client("kms"),
        execution=event["execution"],
        execution_arn=event["executionArn"],
    )
    if plan["Action"] == "reset":
        lock.acquire(
            client("dynamodb"), CONFIG.lock_table_name, plan["InstanceId"], plan["ExecutionArn"]
        )
    logger.info(
        "plan",
        extra={"action": plan["Action"], "instance": plan["InstanceId"], "mode": plan.get("Mode")},
    )
    return {"plan": plan}


handler = preflight
