"""Bring the root volume and the instance back to how they were, from what EC2 says now."""

from __future__ import annotations

from typing import Any

from lambdas.logic.rollback import rollback as roll_back
from lambdas.runtime import client, phase


@phase
def rollback(event: dict[str, Any]) -> dict[str, Any]:
    return roll_back(client("ec2"), event["plan"])


handler = rollback
