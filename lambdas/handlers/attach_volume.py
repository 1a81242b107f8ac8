"""Attach a volume at a device name (the helper's spare slot, or the original root device)."""

from __future__ import annotations

from typing import Any

from lambdas.logic.volumes import attach_volume as attach
from lambdas.runtime import client, phase


@phase(changes=True)
def attach_volume(event: dict[str, Any]) -> dict[str, Any]:
    return attach(client("ec2"), event["volumeId"], event["instanceId"], event["device"])


handler = attach_volume
