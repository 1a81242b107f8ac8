"""Detach a volume from the instance this run expects it on."""

from __future__ import annotations

from typing import Any

from lambdas.logic.volumes import detach_volume as detach
from lambdas.runtime import client, phase


@phase(changes=True)
def detach_volume(event: dict[str, Any]) -> dict[str, Any]:
    return detach(client("ec2"), event["volumeId"], event["instanceId"])


handler = detach_volume
