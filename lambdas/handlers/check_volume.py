"""Poll: is the volume available, or attached where it should be?"""

from __future__ import annotations

from typing import Any

from lambdas import timestamps
from lambdas.logic.volumes import wait_volume
from lambdas.runtime import client, phase


@phase
def check_volume(event: dict[str, Any]) -> dict[str, Any]:
    result = wait_volume(client("ec2"), event["volumeId"], event["wanted"], event.get("instanceId"))
    return {**result, "At": timestamps.now()}


handler = check_volume
