"""Find or make the subnet and security group the helper will use."""

from __future__ import annotations

from typing import Any

from lambdas.logic.network import prepare_network as prepare
from lambdas.records import NetworkRecord
from lambdas.runtime import client, first_attempt, phase


@phase(changes=True)
def prepare_network(event: dict[str, Any]) -> NetworkRecord:
    return prepare(client("ec2"), event["plan"], first_attempt(event))


handler = prepare_network
