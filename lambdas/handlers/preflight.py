"""Preflight: validate the input, inspect the instance, take the lock, return the plan; an
alarm-started reset also passes the circuit breaker, or ends at once with Action "skip"."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.errors import InstanceLocked
from lambdas.logic import breaker, lock, notify
from lambdas.logic.inputs import parse_request
from lambdas.logic.preflight import plan_reset
from lambdas.plan import Plan, PlanHeader
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
    if plan["Action"] == "reset" and request.from_alarm:
        plan = _through_breaker(plan, request.from_alarm)
    if plan["Action"] == "reset":
        _lock(plan, bool(request.from_alarm))
    logger.info(
        "plan",
        extra={"action": plan["Action"], "instance": plan["InstanceId"], "mode": plan.get("Mode")},
    )
    return {"plan": plan}


def _lock(plan: PlanHeader | Plan, alarm_started: bool) -> None:
    dynamodb = client("dynamodb")
    try:
        lock.acquire(dynamodb, CONFIG.lock_table_name, plan["InstanceId"], plan["ExecutionArn"])
    except InstanceLocked:
        if alarm_started:
            # This run changes nothing: the breaker must not count it.
            breaker.withdraw(
                dynamodb, CONFIG.lock_table_name, plan["InstanceId"], plan["ExecutionArn"]
            )
        raise


def _through_breaker(plan: PlanHeader | Plan, alarm: str) -> PlanHeader | Plan:
    """The plan when the breaker admits this alarm-started reset, else a skip. Before the lock:
    two alarms at once then end as one reset and one skip, not one reset and one refusal."""
    dynamodb = client("dynamodb")
    suppressed = breaker.admit(
        dynamodb,
        CONFIG.lock_table_name,
        plan["InstanceId"],
        alarm=alarm,
        execution_arn=plan["ExecutionArn"],
        cooldown_seconds=CONFIG.alarm_cooldown_seconds,
    )
    if suppressed is None:
        return plan
    skip: PlanHeader = {
        "InstanceId": plan["InstanceId"],
        "Execution": plan["Execution"],
        "ExecutionArn": plan["ExecutionArn"],
        "StartedAt": plan["StartedAt"],
        "Action": "skip",
        "Notes": [*plan["Notes"], suppressed.reason],
        "Alarm": alarm,
    }
    subject, message = notify.suppressed(
        plan["InstanceId"], suppressed.reason, plan["ExecutionArn"]
    )
    notify.publish(client("sns"), CONFIG.notify_topic_arn, subject, message)
    return skip


handler = preflight
