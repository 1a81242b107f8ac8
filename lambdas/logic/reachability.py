"""Can a helper in this subnet reach Systems Manager? Decided in Preflight, before any change.

The helper is managed only through SSM, whose agent calls out over HTTPS to the ssm,
ssmmessages and ec2messages endpoints (AWS Systems Manager User Guide, "Improve the security of
EC2 instances by using VPC endpoints for Systems Manager"). A helper that cannot reach them
never comes online, and the run would wait out its whole poll with the instance stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.errors import InvalidInput
from lambdas.plan import SsmPath, Subnet

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import RouteTableTypeDef

SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")
ANYWHERE = "0.0.0.0/0"
_TARGETS = (
    "GatewayId",
    "TransitGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "CarrierGatewayId",
    "LocalGatewayId",
    "CoreNetworkArn",
)


def check_helper_subnet(
    ec2: EC2Client, subnet: Subnet, mode: str, requested_mode: str, notes: list[str]
) -> bool:
    """Preflight's check of the helper's subnet (a created VPC has its own gateway): refuses
    an offline run, or notes that an online one has no offline fallback. Records in subnet
    how the helper gets out. True when a helper there would reach SSM."""
    if subnet["Choice"] == "CreateNewVPC" or (mode != "offline" and requested_mode != "auto"):
        return True
    try:
        path = ssm_path(ec2, subnet["SubnetId"])
        subnet["Via"], subnet["PublicIp"] = path["Via"], path["PublicIp"]
    except InvalidInput as refused:
        if mode == "offline":
            raise
        notes.append(f"no offline fallback: {refused}")
        return False
    return True


def ssm_path(ec2: EC2Client, subnet_id: str) -> SsmPath:
    """How the helper would reach SSM from subnet_id: {"Via": ..., "PublicIp": bool}, where
    PublicIp says LaunchHelper must ask for a public IP. Refuses (InvalidInput) naming what is
    missing when there is no way."""
    subnet = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    vpc_id = subnet["VpcId"]
    table = _route_table(ec2, subnet_id, vpc_id)
    route = next(
        (
            r
            for r in table.get("Routes", [])
            if r.get("DestinationCidrBlock") == ANYWHERE and r.get("State", "active") == "active"
        ),
        None,
    )
    if route is not None:
        gateway = str(route.get("GatewayId") or "")
        if gateway.startswith("igw-"):
            # An internet gateway carries only traffic from a public IP; the helper asks for one.
            return {"Via": f"internet gateway {gateway}", "PublicIp": True}
        nat = route.get("NatGatewayId")
        if nat and _nat_available(ec2, str(nat)):
            return {"Via": f"NAT gateway {nat}", "PublicIp": False}
        # A peered VPC's gateways carry no traffic of ours (AWS: no edge-to-edge routing).
        if not nat and not route.get("VpcPeeringConnectionId"):
            # Transit gateway, NAT instance, firewall endpoint...: egress this run cannot see
            # past; AWS routes it, so trust the owner's route.
            target = next(
                (str(v) for k, v in route.items() if v and k in _TARGETS), "another target"
            )
            return {"Via": f"route to {target}", "PublicIp": False}
    endpoints = _ssm_endpoints(ec2, vpc_id, ec2.meta.region_name)
    missing = [name for name in SSM_ENDPOINTS if name not in endpoints]
    if not missing:
        return {
            "Via": "VPC endpoints " + ", ".join(endpoints[n] for n in SSM_ENDPOINTS),
            "PublicIp": False,
        }
    if route is None or route.get("VpcPeeringConnectionId"):
        why = f"its route table {table.get('RouteTableId')} has no active route to {ANYWHERE}"
    else:
        why = (
            f"its {ANYWHERE} route goes to NAT gateway {route.get('NatGatewayId')}, "
            "which is not available"
        )
    raise InvalidInput(
        f"SubnetId: a helper in {subnet_id} could not reach Systems Manager: {why}, and VPC "
        f"{vpc_id} has no available interface endpoint with private DNS for "
        f"{', '.join(missing)}. Use SubnetId CreateNewVPC, a subnet with a route to an "
        "internet gateway or NAT gateway, or create interface endpoints for ssm, ssmmessages "
        "and ec2messages (private DNS on) in that VPC"
    )


def _route_table(ec2: EC2Client, subnet_id: str, vpc_id: str) -> RouteTableTypeDef:
    """The subnet's own table, or else the VPC's main table (AWS: a subnet with no explicit
    association uses the main route table)."""
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
    )["RouteTables"]
    if not tables:
        tables = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
    return tables[0] if tables else {}


def _nat_available(ec2: EC2Client, nat_id: str) -> bool:
    found = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    return any(n.get("State") == "available" for n in found)


def _ssm_endpoints(ec2: EC2Client, vpc_id: str, region: str) -> dict[str, str]:
    """Short service name -> endpoint ID, for available interface endpoints with private DNS
    (without it the agent resolves the public names and never uses the endpoint)."""
    names = {f"com.amazonaws.{region}.{name}": name for name in SSM_ENDPOINTS}
    found = ec2.describe_vpc_endpoints(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": list(names)},
        ]
    )["VpcEndpoints"]
    return {
        names[e["ServiceName"]]: str(e["VpcEndpointId"])
        for e in found
        if e.get("ServiceName") in names
        and e.get("PrivateDnsEnabled")
        and str(e.get("State", "")).lower() == "available"
        and e.get("VpcEndpointType", "Interface") == "Interface"
    }
