"""Stop the target instance if it runs."""

from __future__ import annotations

from typing import Any

from lambdas.logic.instances import stop_instance as stop
from lambdas.runtime import client, phase


@phase(changes=True)
def stop_instance(event: dict[str, Any]) -> dict[str, Any]:
    return stop(client("ec2"), event["plan"]["InstanceId"])


handler = stop_instance
