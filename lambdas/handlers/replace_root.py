"""Mode replace-root: replace the instance's root volume with the repaired copy (one reboot)."""

from __future__ import annotations

from typing import Any

from lambdas.logic.replace_root import replace_root as replace
from lambdas.runtime import client, phase


@phase(changes=True)
def replace_root(event: dict[str, Any]) -> dict[str, Any]:
    return replace(client("ec2"), event["plan"], event["volumeId"])


handler = replace_root
