"""Launch the Ubuntu helper with the stack's SSM-only instance profile."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic.helper import launch_helper as launch
from lambdas.records import HelperRecord
from lambdas.runtime import client, first_attempt, phase

CONFIG = Config.from_env()


@phase(changes=True)
def launch_helper(event: dict[str, Any]) -> HelperRecord:
    return launch(
        client("ec2"),
        client("ssm"),
        event["plan"],
        event["network"],
        CONFIG.helper_instance_profile_arn,
        first_attempt(event),
    )


handler = launch_helper
