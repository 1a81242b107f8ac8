"""Start the backup (AMI or snapshot) before the root volume moves; do not wait for it."""

from __future__ import annotations

from typing import Any

from lambdas.logic.backup import take_backup
from lambdas.runtime import client, first_attempt, phase


@phase(changes=True)
def backup(event: dict[str, Any]) -> dict[str, Any]:
    return take_backup(client("ec2"), event["plan"], first_attempt(event))


handler = backup
