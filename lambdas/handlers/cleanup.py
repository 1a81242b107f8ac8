"""Delete everything tagged with this execution: helper, network, pending key."""

from __future__ import annotations

from typing import Any

from lambdas.logic.cleanup import cleanup as clean
from lambdas.runtime import client, phase


@phase
def cleanup(event: dict[str, Any]) -> dict[str, Any]:
    plan = event.get("plan") or {}
    return clean(client("ec2"), client("ssm"), event["execution"], plan.get("InstanceId"),
                 discard_pending_key=bool(event.get("afterFailure")))


handler = cleanup
