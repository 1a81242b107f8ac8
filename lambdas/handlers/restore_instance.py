"""Put DeleteOnTermination back and start the instance if it was running."""

from __future__ import annotations

from typing import Any

from lambdas import timestamps
from lambdas.logic.instances import restore_instance as restore
from lambdas.runtime import client, phase


@phase(changes=True)
def restore_instance(event: dict[str, Any]) -> dict[str, Any]:
    return {**restore(client("ec2"), event["plan"]), "At": timestamps.now()}


handler = restore_instance
