"""Put DeleteOnTermination back and start the instance if it was running."""

from __future__ import annotations

from typing import Any

from lambdas import timestamps
from lambdas.logic.instances import restore_instance as restore
from lambdas.runtime import client, phase


# Unmarked: it does what Rollback would (DeleteOnTermination as planned, the instance started if
# it ran), with calls safe to repeat, so Rollback need not wait for it.
@phase
def restore_instance(event: dict[str, Any]) -> dict[str, Any]:
    return {**restore(client("ec2"), event["plan"]), "At": timestamps.now()}


handler = restore_instance
