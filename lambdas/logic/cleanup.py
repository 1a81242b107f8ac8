"""Cleanup by tag: whatever this execution created, found by its tag, deleted in dependency
order. Idempotent; raises NotReady while EC2 is still tearing something down."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.errors import NotReady
from lambdas.logic.consistency import not_yet_visible
from lambdas.logic.tags import execution_filter
from lambdas.names import EXECUTION_TAG, pending_parameter
from lambdas.records import NetworkRecord

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef
    from mypy_boto3_ssm import SSMClient

# Errors that mean "a dependent resource is still going away": try again shortly.
_STILL_IN_USE = ("DependencyViolation", "InvalidGroup.InUse", "IncorrectState")
# The kinds of network piece a run makes, as DescribeTags names them.
_NETWORK_TYPES = ["vpc", "subnet", "security-group", "route-table", "internet-gateway"]


def cleanup(
    ec2: EC2Client,
    ssm: SSMClient,
    execution: str,
    instance_id: str | None,
    discard_pending_key: bool,
    network: NetworkRecord | None = None,
) -> dict[str, Any]:
    """discard_pending_key only after a failure: on success the key is published after this.
    network: PrepareNetwork's record, if the caller has it (the success path)."""
    removed: dict[str, list[str]] = {}
    waiting = _terminate_instances(ec2, execution, removed)
    if waiting:
        # Network pieces cannot go while the helper's interface exists.
        raise NotReady("; ".join(waiting))
    recorded = _recorded_pieces(network)
    tagged = _tagged_network(ec2, execution) if recorded else set()
    if network and recorded and tagged <= set(recorded):
        waiting = _delete_recorded(ec2, network, tagged, removed)
    else:
        waiting = _delete_network(ec2, execution, removed)
    if waiting:
        raise NotReady("still in use: " + ", ".join(waiting))
    if instance_id and discard_pending_key:
        try:
            ssm.delete_parameter(Name=pending_parameter(instance_id, execution))
            removed.setdefault("parameters", []).append("pending key")
        except ssm.exceptions.ParameterNotFound:
            pass
    return {"Removed": removed}


def _terminate_instances(
    ec2: EC2Client, execution: str, removed: dict[str, list[str]]
) -> list[str]:
    """Terminate the execution's instances; what is still there (or not yet visible) waits."""
    waiting: list[str] = []
    reservations = ec2.describe_instances(Filters=execution_filter(execution))["Reservations"]
    for instance in (i for r in reservations for i in r["Instances"]):
        state = instance["State"]["Name"]
        if state == "terminated":
            continue
        try:
            _keep_foreign_volumes(ec2, instance, execution)
        except ClientError as error:
            if not not_yet_visible(error):
                raise
            waiting.append(f"{instance['InstanceId']} not visible to EC2 yet")
            continue
        if state != "shutting-down":
            _delete(
                lambda i=instance: ec2.terminate_instances(InstanceIds=[i["InstanceId"]]),
                instance["InstanceId"],
                "instances",
                removed,
                waiting,
            )
        waiting.append(f"{instance['InstanceId']} terminating")
    return waiting


def _recorded_pieces(network: NetworkRecord | None) -> dict[str, str]:
    """The temporary VPC's pieces (ID: kind) in deletion order, if one first attempt made it
    all; else none."""
    pieces = network.get("Pieces") if network else None
    if not network or not pieces:
        return {}
    return {
        network["SecurityGroupId"]: "security_groups",
        pieces["RouteTableId"]: "route_tables",
        pieces["InternetGatewayId"]: "internet_gateways",
        network["SubnetId"]: "subnets",
        network["VpcId"]: "vpcs",
    }


def _tagged_network(ec2: EC2Client, execution: str) -> set[str]:
    """Every network piece carrying this execution's tag, in one call: more than the record
    holds (a create call botocore repeated after a timeout) sends cleanup the search way."""
    tags = ec2.describe_tags(
        Filters=[
            {"Name": "key", "Values": [EXECUTION_TAG]},
            {"Name": "value", "Values": [execution]},
            {"Name": "resource-type", "Values": _NETWORK_TYPES},
        ]
    )["Tags"]
    return {str(tag["ResourceId"]) for tag in tags if "ResourceId" in tag}


def _delete_recorded(
    ec2: EC2Client, network: NetworkRecord, tagged: set[str], removed: dict[str, list[str]]
) -> list[str]:
    """The recorded pieces still there, by ID, dependents first: no Describe per kind."""
    pieces = network["Pieces"]
    vpc_id, table_id, gateway_id = (
        network["VpcId"],
        pieces["RouteTableId"],
        pieces["InternetGatewayId"],
    )
    steps: list[tuple[str, str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            network["SecurityGroupId"],
            "security_groups",
            lambda: ec2.delete_security_group(GroupId=network["SecurityGroupId"]),
            None,
        ),
        (
            table_id,
            "route_tables",
            lambda: ec2.delete_route_table(RouteTableId=table_id),
            lambda: ec2.disassociate_route_table(AssociationId=pieces["RouteTableAssociationId"]),
        ),
        (
            gateway_id,
            "internet_gateways",
            lambda: ec2.delete_internet_gateway(InternetGatewayId=gateway_id),
            lambda: ec2.detach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id),
        ),
        (
            network["SubnetId"],
            "subnets",
            lambda: ec2.delete_subnet(SubnetId=network["SubnetId"]),
            None,
        ),
        (vpc_id, "vpcs", lambda: ec2.delete_vpc(VpcId=vpc_id), None),
    ]
    waiting: list[str] = []
    for resource_id, kind, delete, release in steps:
        if resource_id not in tagged:
            continue  # gone in an earlier round
        if release:
            _release(release)
        _delete(delete, resource_id, kind, removed, waiting)
    return waiting


def _release(call: Callable[[], Any]) -> None:
    """Disassociate or detach before the delete; an earlier round may have done it."""
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if not (code.endswith(".NotFound") or code == "Gateway.NotAttached"):
            raise


def _delete_network(ec2: EC2Client, execution: str, removed: dict[str, list[str]]) -> list[str]:
    """Delete the execution's network pieces, dependents first; returns those still in use."""
    waiting: list[str] = []
    filters = execution_filter(execution)
    for group in ec2.describe_security_groups(Filters=filters)["SecurityGroups"]:
        _delete(
            lambda g=group: ec2.delete_security_group(GroupId=g["GroupId"]),
            group["GroupId"],
            "security_groups",
            removed,
            waiting,
        )
    for table in ec2.describe_route_tables(Filters=filters)["RouteTables"]:
        for association in table.get("Associations", []):
            if not association.get("Main"):
                ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        _delete(
            lambda t=table: ec2.delete_route_table(RouteTableId=t["RouteTableId"]),
            table["RouteTableId"],
            "route_tables",
            removed,
            waiting,
        )
    for gateway in ec2.describe_internet_gateways(Filters=filters)["InternetGateways"]:
        for attached in gateway.get("Attachments", []):
            ec2.detach_internet_gateway(
                InternetGatewayId=gateway["InternetGatewayId"], VpcId=attached["VpcId"]
            )
        _delete(
            lambda g=gateway: ec2.delete_internet_gateway(InternetGatewayId=g["InternetGatewayId"]),
            gateway["InternetGatewayId"],
            "internet_gateways",
            removed,
            waiting,
        )
    for subnet in ec2.describe_subnets(Filters=filters)["Subnets"]:
        _delete(
            lambda s=subnet: ec2.delete_subnet(SubnetId=s["SubnetId"]),
            subnet["SubnetId"],
            "subnets",
            removed,
            waiting,
        )
    for vpc in ec2.describe_vpcs(Filters=filters)["Vpcs"]:
        _delete(
            lambda v=vpc: ec2.delete_vpc(VpcId=v["VpcId"]), vpc["VpcId"], "vpcs", removed, waiting
        )
    return waiting


def _delete(
    call: Any, resource_id: str, kind: str, removed: dict[str, list[str]], waiting: list[str]
) -> None:
    try:
        call()
        removed.setdefault(kind, []).append(resource_id)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        # NotFound for a resource the Describe just listed is lag, not proof it is gone: the
        # next round describes again, and what is really gone is no longer listed.
        if code in _STILL_IN_USE or not_yet_visible(error):
            waiting.append(resource_id)
        elif not code.endswith(".NotFound"):
            raise


def _keep_foreign_volumes(ec2: EC2Client, instance: InstanceTypeDef, execution: str) -> None:
    """Never let a helper's termination delete a volume this run did not create (the target's
    root): AttachVolume sets DeleteOnTermination false, and this makes sure it still is."""
    for mapping in instance.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        if not ebs.get("DeleteOnTermination") or mapping["DeviceName"] == instance.get(
            "RootDeviceName"
        ):
            continue
        ec2.modify_instance_attribute(
            InstanceId=instance["InstanceId"],
            BlockDeviceMappings=[
                {"DeviceName": mapping["DeviceName"], "Ebs": {"DeleteOnTermination": False}}
            ],
        )
