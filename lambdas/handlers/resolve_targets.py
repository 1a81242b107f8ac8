"""The fleet's first phase: validate its input, find its instances in every account and Region,
and hand the Map one item per instance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from lambdas.config import Config
from lambdas.errors import InvalidInput
from lambdas.logic.fleet import (
    FleetRequest,
    Location,
    Where,
    check_network_room,
    count_of,
    parse_fleet_request,
    state_machine_arn,
    targets,
)
from lambdas.names import FLEET_COUNTER_PREFIX, LOCK_EXPIRY, LOCK_KEY, member_role_name
from lambdas.runtime import client, logger, phase

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# The error count outlives any fleet run (the fleet's own timeout) and then expires.
COUNTER_SECONDS = 48 * 3600


@phase
def resolve_targets(event: dict[str, Any]) -> dict[str, Any]:
    config = Config.from_env()
    request = parse_fleet_request(event.get("input"))
    # arn:partition:states:region:account:execution:machine:name
    _, partition, _, region, account, *_ = str(event["executionArn"]).split(":")
    places = [
        _where(location, partition, region, account, config.state_machine_arn)
        for location in _locations(request, region, account)
    ]
    items = targets(request, places, str(event["execution"]))
    total = len(items)
    counter = f"{FLEET_COUNTER_PREFIX}{event['execution']}"
    # More at once than there are instances changes nothing, and would count VPCs never made.
    concurrency = min(count_of(request.max_concurrency, total, at_least=1), total)
    check_network_room(request, concurrency)
    fleet = {
        "Total": total,
        "MaxConcurrency": concurrency,
        "MaxErrors": count_of(request.max_errors, total, at_least=0),
        "CounterKey": counter,
    }
    _create_counter(config.lock_table_name, counter)
    logger.info("fleet", extra={k: v for k, v in fleet.items() if k != "CounterKey"})
    return {"fleet": fleet, "targets": items}


def _locations(request: FleetRequest, region: str, account: str) -> tuple[Location, ...]:
    locations = request.locations or (Location(account, region),)
    elsewhere = sorted({loc.region for loc in locations if loc.region != region})
    if elsewhere:
        # Step Functions' StartExecution integration starts executions in its own Region.
        raise InvalidInput(
            f"TargetLocations: {', '.join(elsewhere)}: a fleet starts resets in its own Region "
            f"({region}); start a fleet from the ResetAccess stack in each Region"
        )
    return locations


def _where(
    location: Location, partition: str, region: str, account: str, own_machine: str
) -> Where:
    if location.account == account:
        return Where(location, own_machine, None, lambda: client("ec2"))
    role_arn = (
        f"arn:{partition}:iam::{location.account}:role/"
        f"{location.role_name or member_role_name(location.region)}"
    )
    return Where(
        location,
        state_machine_arn(partition, location),
        role_arn,
        lambda: _member_ec2(role_arn, location.region),
    )


def _member_ec2(role_arn: str, region: str) -> EC2Client:
    """EC2 in a member account, as the member stack's role (which may only read instances)."""
    try:
        credentials = client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="ResetAccessFleet"
        )["Credentials"]
    except ClientError as error:
        raise InvalidInput(
            f"TargetLocations: cannot assume {role_arn} ({error.response['Error']['Code']}); "
            "deploy the member stack there (cdk deploy -c deployment=member) with this account "
            "as its fleet account"
        ) from None
    ec2: EC2Client = boto3.client(
        "ec2",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return ec2


def _create_counter(table: str, key: str) -> None:
    """The fleet's error count at 0; a retried invocation keeps the count it finds."""
    try:
        client("dynamodb").put_item(
            TableName=table,
            Item={
                LOCK_KEY: {"S": key},
                "errors": {"N": "0"},
                LOCK_EXPIRY: {"N": str(int(time.time()) + COUNTER_SECONDS)},
            },
            ConditionExpression=f"attribute_not_exists({LOCK_KEY})",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


handler = resolve_targets
