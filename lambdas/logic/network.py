"""Where the helper lives: a subnet the caller chose, or a temporary VPC made for this run.

Every create call tags the resource in the same call and looks for an existing one first, so
a retried step never makes a second VPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lambdas.logic.consistency import settled
from lambdas.logic.tags import execution_filter, tag_specifications
from lambdas.plan import Plan
from lambdas.records import NetworkRecord

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import IpPermissionOutputTypeDef, IpPermissionTypeDef

VPC_CIDR = "10.213.0.0/24"
HTTPS_EGRESS: list[IpPermissionTypeDef] = [
    {
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "SSM, EC2 messages, package mirrors"}],
    }
]
HTTP_EGRESS: list[IpPermissionTypeDef] = [
    {
        "IpProtocol": "tcp",
        "FromPort": 80,
        "ToPort": 80,
        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "Ubuntu package mirrors (ntfs-3g)"}],
    }
]


def prepare_network(ec2: EC2Client, plan: Plan, first_attempt: bool = False) -> NetworkRecord:
    """first_attempt: no earlier attempt made anything, so everything is made without looking
    for it first (7 calls fewer); a retry looks for each piece before it makes it."""
    execution = plan["Execution"]
    subnet = plan["Subnet"]
    if subnet["Choice"] != "CreateNewVPC":
        described = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]
        vpc_id = described["VpcId"]
        group_id = _security_group(ec2, vpc_id, execution, first_attempt)
        return {
            "SubnetId": subnet["SubnetId"],
            "SecurityGroupId": group_id,
            "VpcId": vpc_id,
            "Created": False,
            # Preflight's finding: behind an internet gateway only a public IP gets out.
            "PublicIp": bool(subnet.get("PublicIp")),
        }

    if first_attempt:
        return _new_network(ec2, plan)
    vpc_id = (
        _existing(ec2.describe_vpcs, "Vpcs", "VpcId", execution)
        or ec2.create_vpc(
            CidrBlock=VPC_CIDR, TagSpecifications=tag_specifications("vpc", execution)
        )["Vpc"]["VpcId"]
    )
    subnet_id = _existing(ec2.describe_subnets, "Subnets", "SubnetId", execution) or settled(
        lambda: ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=VPC_CIDR,
            AvailabilityZone=plan["AvailabilityZone"],
            TagSpecifications=tag_specifications("subnet", execution),
        )["Subnet"]["SubnetId"]
    )
    igw_id = (
        _existing(
            ec2.describe_internet_gateways, "InternetGateways", "InternetGatewayId", execution
        )
        or ec2.create_internet_gateway(
            TagSpecifications=tag_specifications("internet-gateway", execution)
        )["InternetGateway"]["InternetGatewayId"]
    )
    igw = settled(
        lambda: ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    )
    if not any(a.get("VpcId") == vpc_id for a in igw.get("Attachments", [])):
        settled(lambda: ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id))
    route_table_id = _existing(
        ec2.describe_route_tables, "RouteTables", "RouteTableId", execution
    ) or settled(
        lambda: ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=tag_specifications("route-table", execution)
        )["RouteTable"]["RouteTableId"]
    )
    table = settled(
        lambda: ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"][0]
    )
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", [])):
        settled(
            lambda: ec2.create_route(
                RouteTableId=route_table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id
            )
        )
    if not any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
        settled(lambda: ec2.associate_route_table(RouteTableId=route_table_id, SubnetId=subnet_id))
    group_id = _security_group(ec2, vpc_id, execution, first_attempt=False)
    return {
        "SubnetId": subnet_id,
        "SecurityGroupId": group_id,
        "VpcId": vpc_id,
        "Created": True,
        "PublicIp": True,
    }


def _new_network(ec2: EC2Client, plan: Plan) -> NetworkRecord:
    """The temporary VPC on a first attempt: each piece made and joined from the answers of the
    calls that made it, which is all there is of it yet."""
    execution = plan["Execution"]
    vpc_id = ec2.create_vpc(
        CidrBlock=VPC_CIDR, TagSpecifications=tag_specifications("vpc", execution)
    )["Vpc"]["VpcId"]
    subnet_id = settled(
        lambda: ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=VPC_CIDR,
            AvailabilityZone=plan["AvailabilityZone"],
            TagSpecifications=tag_specifications("subnet", execution),
        )["Subnet"]["SubnetId"]
    )
    igw_id = ec2.create_internet_gateway(
        TagSpecifications=tag_specifications("internet-gateway", execution)
    )["InternetGateway"]["InternetGatewayId"]
    settled(lambda: ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id))
    route_table_id = settled(
        lambda: ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=tag_specifications("route-table", execution)
        )["RouteTable"]["RouteTableId"]
    )
    settled(
        lambda: ec2.create_route(
            RouteTableId=route_table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id
        )
    )
    association_id = settled(
        lambda: ec2.associate_route_table(RouteTableId=route_table_id, SubnetId=subnet_id)
    )["AssociationId"]
    return {
        "SubnetId": subnet_id,
        "SecurityGroupId": _new_security_group(ec2, vpc_id, execution),
        "VpcId": vpc_id,
        "Created": True,
        "PublicIp": True,
        "Pieces": {
            "InternetGatewayId": igw_id,
            "RouteTableId": route_table_id,
            "RouteTableAssociationId": association_id,
        },
    }


def _existing(describe: Any, key: str, id_key: str, execution: str) -> str | None:
    found = describe(Filters=execution_filter(execution))[key]
    return str(found[0][id_key]) if found else None


def _security_group(ec2: EC2Client, vpc_id: str, execution: str, first_attempt: bool) -> str:
    """No inbound rule at all; outbound HTTPS for SSM and HTTP for the Ubuntu mirrors."""
    if first_attempt:
        return _new_security_group(ec2, vpc_id, execution)
    found = ec2.describe_security_groups(
        Filters=[*execution_filter(execution), {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    if found:
        # A run killed between the create and the egress rules left them half done.
        _restrict_egress(ec2, str(found[0]["GroupId"]), found[0].get("IpPermissionsEgress", []))
        return str(found[0]["GroupId"])
    return _new_security_group(ec2, vpc_id, execution)


def _new_security_group(ec2: EC2Client, vpc_id: str, execution: str) -> str:
    group_id = str(
        settled(
            lambda: ec2.create_security_group(
                GroupName=f"reset-access-{execution}"[:255],
                Description="ResetAccess helper: no inbound, HTTPS and HTTP out",
                VpcId=vpc_id,
                TagSpecifications=tag_specifications("security-group", execution),
            )["GroupId"]
        )
    )
    # AWS gives a new group one egress rule: everything, anywhere.
    _restrict_egress(ec2, group_id, [{"IpProtocol": "-1"}])
    return group_id


def _restrict_egress(
    ec2: EC2Client, group_id: str, egress: Sequence[IpPermissionOutputTypeDef]
) -> None:
    if any(rule.get("IpProtocol") == "-1" for rule in egress):
        settled(
            lambda: ec2.revoke_security_group_egress(
                GroupId=group_id,
                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            )
        )
    if not any(rule.get("FromPort") == 443 for rule in egress):
        settled(
            lambda: ec2.authorize_security_group_egress(
                GroupId=group_id, IpPermissions=HTTPS_EGRESS + HTTP_EGRESS
            )
        )
