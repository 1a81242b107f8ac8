"""Poll: is the helper running and managed by SSM?"""

from __future__ import annotations

from typing import Any

from lambdas.logic.helper import check_helper_ready
from lambdas.runtime import client, phase


@phase
def check_helper(event: dict[str, Any]) -> dict[str, Any]:
    return check_helper_ready(client("ec2"), client("ssm"), event["helperId"])


handler = check_helper
