"""Subnets for the helper, made in the engine's world before a run: one per way out to
Systems Manager (internet gateway, NAT gateway, interface endpoints) and the broken variants."""

from __future__ import annotations

from collections.abc import Callable

import boto3

from local.engine import Engine

REGION = "us-east-1"


def subnet_with(path: str) -> Callable[[Engine], None]:
    """A new VPC in the instance's zone whose subnet reaches out through `path`."""

    def prepare(engine: Engine) -> None:
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone=f"{REGION}a"
        )["Subnet"]["SubnetId"]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        if path in ("internet-gateway", "nat"):
            gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        if path == "internet-gateway":
            # MapPublicIpOnLaunch stays false: the helper must ask for its public IP.
            ec2.create_route(
                RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway
            )
        elif path == "nat":
            public = ec2.create_subnet(
                VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone=f"{REGION}a"
            )["Subnet"]["SubnetId"]
            allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
            nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"][
                "NatGatewayId"
            ]
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        elif path.startswith("endpoints"):
            services = ["ssm", "ssmmessages", "ec2messages"]
            if path == "endpoints-but-ec2messages":
                services.remove("ec2messages")
            for service in services:
                ec2.create_vpc_endpoint(
                    VpcId=vpc,
                    ServiceName=f"com.amazonaws.{REGION}.{service}",
                    VpcEndpointType="Interface",
                    SubnetIds=[subnet],
                    PrivateDnsEnabled=path != "endpoints-without-private-dns",
                )
        engine.scenario.input["SubnetId"] = subnet

    return prepare
