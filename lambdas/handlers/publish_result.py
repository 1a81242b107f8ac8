"""Publish the key where users look for it, write the result, release the lock."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic.ending import Notices, Run, finish
from lambdas.logic.keys import publish_key
from lambdas.logic.results import success_result
from lambdas.logic.windows import find_password_ami
from lambdas.plan import Plan
from lambdas.runtime import client, logger, phase

CONFIG = Config.from_env()


@phase
def publish_result(event: dict[str, Any]) -> dict[str, Any]:
    run = event["run"]
    plan: Plan = run["plan"]
    ssm = client("ssm")
    publish_key(ssm, plan, CONFIG.kms_key_arn)
    image_id = (
        find_password_ami(client("ec2"), plan["Execution"])
        if plan.get("CreatePasswordEnabledAmi")
        else None
    )
    result = success_result(run, image_id)
    finished = finish(
        ssm,
        client("dynamodb"),
        CONFIG.lock_table_name,
        Run.of(plan),
        result,
        Notices(client("sns"), CONFIG.notify_topic_arn),
    )
    result["ResultParameter"] = finished.parameter
    logger.info("reset finished", extra={"phase_seconds": result["PhaseSeconds"]})
    return result


handler = publish_result
