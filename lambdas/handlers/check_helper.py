"""Poll: is the helper running (the target's cue to stop), or also managed by SSM?"""

from __future__ import annotations

from typing import Any

from lambdas.logic.helper import check_helper_ready, check_helper_running
from lambdas.runtime import client, phase


@phase
def check_helper(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("wanted") == "running":
        return check_helper_running(client("ec2"), event["execution"])
    return check_helper_ready(client("ec2"), client("ssm"), event["helperId"])


handler = check_helper
