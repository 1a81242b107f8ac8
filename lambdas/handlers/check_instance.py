"""Poll: has the instance reached the wanted state?"""

from __future__ import annotations

from typing import Any

from lambdas import timestamps
from lambdas.logic.instances import wait_instance_state
from lambdas.runtime import client, phase


@phase
def check_instance(event: dict[str, Any]) -> dict[str, Any]:
    result = wait_instance_state(client("ec2"), event["instanceId"], event["wanted"])
    return {**result, "At": timestamps.now()}


handler = check_instance
