"""What an acceptance run could leave in the local account."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from lambdas.names import LOCK_KEY, in_flight_key
from local import emulator
from local.acceptance import LocalAccount
from local.stack_twin import LOCK_TABLE

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def _client(service: str) -> Any:
    return boto3.Session(region_name=emulator.REGION).client(service)


def world(account: LocalAccount) -> dict[str, Any]:
    """Everything an acceptance run could leave in the account, by ID. Volumes, images and
    snapshots are read from moto's backend: DescribeSnapshots would list its ~1,300 public
    ones every time."""
    ec2, ssm = _client("ec2"), _client("ssm")
    backend = emulator.ec2_backend()
    instances = sorted(
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    )
    parameters = sorted(
        p["Name"]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True)
        for p in page["Parameters"]
    )
    executions = _client("stepfunctions").list_executions(
        stateMachineArn=account.engine.state_machine_arn
    )["executions"]
    return {
        "instances": instances,
        "volumes": sorted(backend.volumes),
        "key pairs": sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]),
        "security groups": sorted(
            g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
        ),
        "images": sorted(backend.amis),
        "snapshots": sorted(backend.snapshots),
        "parameters": parameters,
        "running executions": [e["name"] for e in executions if e["status"] == "RUNNING"],
        # Locks and breakers; a run's sealed in-flight item waits for the table's TTL.
        "locks": [
            item
            for item in _client("dynamodb").scan(TableName=LOCK_TABLE)["Items"]
            if not item[LOCK_KEY]["S"].startswith(in_flight_key(""))
        ],
    }


SERVICES = ("sts", "cloudformation", "ssm", "ec2", "stepfunctions", "dynamodb")


@contextlib.contextmanager
def calls_made(account: LocalAccount) -> Iterator[set[str]]:
    """The IAM actions (`states:StartExecution`...) of the requests a run makes."""
    made: set[str] = set()

    def record(model: Any, **kwargs: Any) -> None:
        made.add(f"{model.service_model.signing_name}:{model.name}")

    for service in SERVICES:
        account.clients(service).meta.events.register("before-call", record, unique_id="calls")
    try:
        yield made
    finally:
        for service in SERVICES:
            account.clients(service).meta.events.unregister("before-call", unique_id="calls")


def policy_actions() -> set[str]:
    policy = json.loads((REPO / "docs/acceptance-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions
