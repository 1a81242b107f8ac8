"""Bring the root volume and the instance back to how they were, from what EC2 says now."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic import inflight
from lambdas.logic.rollback import rollback as roll_back
from lambdas.runtime import client, invocation_token, phase

CONFIG = Config.from_env()


@phase
def rollback(event: dict[str, Any]) -> dict[str, Any]:
    # A stopped Parallel's phases may still be running: look at EC2 once they are done.
    inflight.wait_for_others(
        client("dynamodb"), CONFIG.lock_table_name, event["execution"], invocation_token()
    )
    return roll_back(client("ec2"), event["plan"])


handler = rollback
