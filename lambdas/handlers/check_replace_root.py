"""Poll the root volume replacement; once it succeeded, tag the old root volume it kept."""

from __future__ import annotations

from typing import Any

from lambdas.logic.replace_root import wait_replaced
from lambdas.runtime import client, phase


@phase
def check_replace_root(event: dict[str, Any]) -> dict[str, Any]:
    return wait_replaced(client("ec2"), event["plan"], event["volumeId"])


handler = check_replace_root
