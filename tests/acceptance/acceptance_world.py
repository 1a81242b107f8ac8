"""What an acceptance run could leave in the local account."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from local import emulator
from local.acceptance import LocalAccount
from local.engine import LOCK_TABLE


@functools.cache
def _client(service: str) -> Any:
    return boto3.Session(region_name=emulator.REGION).client(service)


def world(account: LocalAccount) -> dict[str, Any]:
    """Everything an acceptance run could leave in the account, by ID. Volumes, images and
    snapshots are read from moto's backend: DescribeSnapshots would list its ~1,300 public
    ones every time."""
    ec2, ssm = _client("ec2"), _client("ssm")
    backend = emulator._ec2_backend()
    instances = sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                       for i in r["Instances"] if i["State"]["Name"] != "terminated")
    parameters = sorted(p["Name"] for page in ssm.get_paginator(
        "get_parameters_by_path").paginate(Path="/", Recursive=True) for p in page["Parameters"])
    executions = _client("stepfunctions").list_executions(
        stateMachineArn=account.engine.state_machine_arn)["executions"]
    return {
        "instances": instances,
        "volumes": sorted(backend.volumes),
        "key pairs": sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]),
        "security groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()[
            "SecurityGroups"]),
        "images": sorted(backend.amis),
        "snapshots": sorted(backend.snapshots),
        "parameters": parameters,
        "running executions": [e["name"] for e in executions if e["status"] == "RUNNING"],
        "locks": _client("dynamodb").scan(TableName=LOCK_TABLE)["Items"],
    }
