"""Send the rescue document to the instance that holds the volume (helper, or the instance)."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic.rescue_command import send_rescue
from lambdas.plan import Plan
from lambdas.records import RescueCommand
from lambdas.runtime import client, first_attempt, phase

CONFIG = Config.from_env()


@phase
def run_rescue(event: dict[str, Any]) -> RescueCommand:
    plan: Plan = event["plan"]
    return send_rescue(
        client("ssm"),
        CONFIG.rescue_document_name,
        event["instanceId"],
        plan["Platform"],
        event["target"],
        event.get("publicKey") or "",
        plan["Execution"],
        CONFIG.kms_key_arn,
        first_attempt(event),
    )


handler = run_rescue
