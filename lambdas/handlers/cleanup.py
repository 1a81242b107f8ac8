"""Delete everything tagged with this execution: helper, network, pending key."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic import inflight
from lambdas.logic.cleanup import cleanup as clean
from lambdas.runtime import client, invocation_token, phase

CONFIG = Config.from_env()


# Unmarked: it only deletes, found by tag each round, so a round still running when the failure
# path starts leaves nothing for it to miss, and two rounds at once are safe.
@phase
def cleanup(event: dict[str, Any]) -> dict[str, Any]:
    plan = event.get("plan") or {}
    if event.get("afterFailure"):
        # Nothing may be created behind cleanup's back by a phase still running.
        inflight.wait_for_others(
            client("dynamodb"), CONFIG.lock_table_name, event["execution"], invocation_token()
        )
    return clean(
        client("ec2"),
        client("ssm"),
        event["execution"],
        plan.get("InstanceId"),
        discard_pending_key=bool(event.get("afterFailure")),
        # The success path hands PrepareNetwork's record on (statemachine/definition.py).
        network=event.get("network"),
    )


handler = cleanup
