"""The fleet's first phase: validate its input, find its instances in every account and Region,
and hand the Map one item per instance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from lambdas.config import Config
from lambdas.errors import InvalidInput
from lambdas.logic.elsewhere import missing_stack
from lambdas.logic.fleet import (
    FleetRequest,
    Location,
    Where,
    check_network_room,
    check_reach,
    count_of,
    parse_fleet_request,
    state_machine_arn,
    targets,
)
from lambdas.names import FLEET_COUNTER_PREFIX, LOCK_EXPIRY, LOCK_KEY, member_role_name
from lambdas.runtime import assumed, client, logger, phase, stepfunctions_in

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
    check_reach(request, Location(account, region), config.member_accounts, config.member_regions)
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
    return request.locations or (Location(account, region),)


def _where(
    location: Location, partition: str, region: str, account: str, own_machine: str
) -> Where:
    """How the fleet reaches a location: here directly; another account through its member
    role; another Region through the StartElsewhere/CheckElsewhere functions (`remote`)."""
    remote = location.region != region
    if location.account == account:
        if not remote:
            return Where(location, own_machine, None, lambda: client("ec2"))
        machine = state_machine_arn(partition, location)
        return Where(
            location,
            machine,
            None,
            lambda: _ec2_in(location.region, {}, machine),
            remote=True,
        )
    role_arn = (
        f"arn:{partition}:iam::{location.account}:role/"
        f"{location.role_name or member_role_name(location.region)}"
    )
    return Where(
        location,
        state_machine_arn(partition, location),
        role_arn,
        lambda: _ec2_in(location.region, assumed(role_arn), None),
        remote=remote,
    )


def _ec2_in(region: str, credentials: dict[str, str], machine: str | None) -> EC2Client:
    """EC2 in a location's Region (as the member role there, which may only read instances);
    in this account's other Regions, first the check that ResetAccess is deployed there."""
    if machine:
        try:
            stepfunctions_in(region).describe_state_machine(stateMachineArn=machine)
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
            account = machine.split(":")[4]
            raise InvalidInput(missing_stack({"Account": account, "Region": region})) from None
    ec2: EC2Client = boto3.client("ec2", region_name=region, **credentials)
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
