"""Windows offline: the password-enabled AMI of the stopped instance, not waited for."""

from __future__ import annotations

from typing import Any

from lambdas.logic.windows import create_password_ami as create
from lambdas.runtime import client, first_attempt, phase


@phase(changes=True)
def create_password_ami(event: dict[str, Any]) -> dict[str, Any]:
    return create(client("ec2"), event["plan"], first_attempt(event))


handler = create_password_ami
