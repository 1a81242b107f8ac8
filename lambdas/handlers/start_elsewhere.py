"""A fleet iteration's target in another Region: start its ResetAccess execution there."""

from __future__ import annotations

from typing import Any

from lambdas.logic import elsewhere
from lambdas.runtime import logger, phase, stepfunctions_in


@phase
def start_elsewhere(event: dict[str, Any]) -> dict[str, Any]:
    target = event["target"]
    sfn = stepfunctions_in(str(target["Region"]), target.get("RoleArn"))
    arn = elsewhere.start(sfn, target)
    logger.info("child started", extra={"child": arn})
    return {"ExecutionArn": arn}


handler = start_elsewhere
