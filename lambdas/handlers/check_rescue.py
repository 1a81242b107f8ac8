"""Poll the rescue command; return the agent's report, or fail with the agent's own words."""

from __future__ import annotations

from typing import Any

from lambdas import timestamps
from lambdas.logic.rescue_command import check_rescue as check
from lambdas.runtime import client, phase


@phase
def check_rescue(event: dict[str, Any]) -> dict[str, Any]:
    report = check(
        client("ssm"),
        event["commandId"],
        event["instanceId"],
        timestamps.epoch(event.get("since") or 0),
    )
    return {**report, "At": timestamps.now()}


handler = check_rescue
