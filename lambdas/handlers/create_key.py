"""Make the new key pair (unless the caller brought a public key); only the public half leaves."""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic.keys import create_key as make_key
from lambdas.records import KeyRecord
from lambdas.runtime import client, phase

CONFIG = Config.from_env()


@phase(changes=True)
def create_key(event: dict[str, Any]) -> KeyRecord:
    return make_key(client("ssm"), event["plan"], CONFIG.kms_key_arn)


handler = create_key
