"""The network a helper needs to be managed by SSM, which moto does not model.

AWS (Systems Manager User Guide, "Setting up Systems Manager for EC2 instances"; "Improve the
security of EC2 instances by using VPC endpoints for Systems Manager"): the SSM agent reaches
the ssm, ssmmessages and ec2messages endpoints over HTTPS, through an internet gateway (with a
public IP), a NAT gateway or other egress route, or interface VPC endpoints with private DNS;
an instance that cannot never comes online. moto makes any instance with a profile online.

AWS (Amazon VPC User Guide, "Default VPCs"): the default VPC has an internet gateway attached
and a main route table with 0.0.0.0/0 to it; moto's default VPC has neither.
"""

from __future__ import annotations

from typing import Any

SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")


def give_default_vpc_its_gateway(ec2: Any) -> None:
    """The world's default VPC as AWS makes it: internet gateway and a default route."""
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0][
        "VpcId"
    ]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)


def no_way_to_ssm(backend: Any, instance: Any) -> str | None:
    """Why this instance's agent cannot reach SSM, or None when it can."""
    subnet = backend.get_subnet(instance.subnet_id)
    tables = [t for t in backend.route_tables.values() if t.vpc_id == subnet.vpc_id]
    table = next((t for t in tables if subnet.id in _associated(t)), None) or next(
        (t for t in tables if t.main_association_id), None
    )
    routes = [r for r in (table.routes if table else []) if r.destination_cidr_block == "0.0.0.0/0"]
    for route in routes:
        gateway_id = getattr(route.gateway, "id", "") or ""
        if gateway_id.startswith("igw-"):
            if instance.public_ip:
                return None
        elif route.nat_gateway is not None:
            if route.nat_gateway.state == "available":
                return None
        elif (
            route.transit_gateway is not None
            or route.interface is not None
            or (route.instance is not None)
        ):
            return None
    endpoints = {
        e.service_name.rsplit(".", 1)[-1]
        for e in backend.vpc_end_points.values()
        if e.vpc_id == subnet.vpc_id and e.private_dns_enabled and e.state == "available"
    }
    if endpoints >= set(SSM_ENDPOINTS):
        return None
    return (
        f"{instance.id} in {subnet.id} has no route to SSM (no public IP behind an "
        "internet gateway, no NAT, no ssm/ssmmessages/ec2messages endpoints)"
    )


def _associated(table: Any) -> set[str]:
    return {a.get("SubnetId") for a in table.associations if a.get("SubnetId")}
