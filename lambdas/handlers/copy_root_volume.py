"""Mode replace-root: copy the running instance's root volume (crash-consistent, at once)."""

from __future__ import annotations

from typing import Any

from lambdas.logic.replace_root import copy_root
from lambdas.runtime import client, phase


@phase(changes=True)
def copy_root_volume(event: dict[str, Any]) -> dict[str, Any]:
    return copy_root(client("ec2"), event["plan"])


handler = copy_root_volume
