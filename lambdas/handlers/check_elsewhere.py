"""A fleet iteration's target in another Region: its ResetAccess execution's end (NotReady
while it runs; the ASL polls)."""

from __future__ import annotations

from typing import Any

from lambdas.logic import elsewhere
from lambdas.runtime import phase, stepfunctions_in


@phase
def check_elsewhere(event: dict[str, Any]) -> dict[str, Any]:
    target = event["target"]
    sfn = stepfunctions_in(str(target["Region"]), target.get("RoleArn"))
    return elsewhere.outcome(sfn, str(event["started"]["ExecutionArn"]))


handler = check_elsewhere
