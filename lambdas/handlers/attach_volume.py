"""Attach a volume at a device name (the helper's spare slot, or the original root device)."""

from __future__ import annotations

from typing import Any

from lambdas.logic.volumes import attach_volume as attach
from lambdas.runtime import client, phase


# Unmarked: at the top level nothing runs on after its Catch; in Finish (ReattachRootVolume) it
# does what Rollback would, to the same end, and refused or repeated it is done.
@phase
def attach_volume(event: dict[str, Any]) -> dict[str, Any]:
    return attach(client("ec2"), event["volumeId"], event["instanceId"], event["device"])


handler = attach_volume
