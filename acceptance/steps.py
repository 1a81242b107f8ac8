"""The steps of an acceptance run, in the order acceptance/run.py runs them: find the account,
the stack, an image and a network; make a security group, a key pair and an instance; lose the
key, reset it offline and online through the deployed workflow, and log in with the new one.

Each step is a method named after its entry in acceptance/run.py's `STEPS` and returns the line
the report shows.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from acceptance.account import CHECKIP, Account, aws_cli
from acceptance.report import Failure, Skipped
from lambdas.names import key_parameter, result_parameter

# AWS publishes the latest Amazon Linux 2023 image ID here for every Region.
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
# The smallest Nitro types: a Xen type would test a path our helpers refuse.
SMALLEST_NITRO = {"x86_64": "t3.nano", "arm64": "t4g.nano"}
LOGIN_USER = "ec2-user"


class Steps(Account):
    """The run's steps; what they create is recorded in `made` for the clean-up."""

    def _credentials(self) -> str:
        identity = self.client("sts").get_caller_identity()
        region = self.client("ec2").meta.region_name
        self.facts["account"] = identity["Account"]
        return f"account {identity['Account']}, Region {region}, as {identity['Arn']}"

    def _stack(self) -> str:
        cloudformation = self.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=self.options.stack)["Stacks"]
        except ClientError as error:
            if "does not exist" in error.response.get("Error", {}).get("Message", ""):
                raise Failure(
                    f"stack {self.options.stack} is not deployed in this account and "
                    "Region: run `make deploy` first (or pass --stack)"
                ) from None
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if "StateMachineArn" not in outputs:
            raise Failure(
                f"stack {self.options.stack} has no StateMachineArn output: is it a "
                "ResetAccess stack, fully deployed?"
            )
        self.facts["state_machine"] = outputs["StateMachineArn"]
        self.facts["lock_table"] = outputs.get("LockTableName")
        return str(outputs["StateMachineArn"])

    def _image(self) -> str:
        arch = self.options.architecture
        name = AL2023_PARAMETER.format(arch=arch)
        self.facts["image"] = self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        self.facts["instance_type"] = self.options.instance_type or SMALLEST_NITRO[arch]
        return f"{self.facts['image']} (Amazon Linux 2023, {arch}), {self.facts['instance_type']}"

    def _network(self) -> str:
        ec2 = self.client("ec2")
        instance_type = self.facts["instance_type"]
        offered = {
            o["Location"]
            for o in ec2.describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [instance_type]}],
            )["InstanceTypeOfferings"]
        }
        if self.options.subnet_id:
            subnet = ec2.describe_subnets(SubnetIds=[self.options.subnet_id])["Subnets"][0]
            if subnet["AvailabilityZone"] not in offered:
                raise Failure(
                    f"{instance_type} is not offered in {subnet['AvailabilityZone']} "
                    f"({subnet['SubnetId']}): pass another --subnet or "
                    "--instance-type"
                )
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise Failure(
                    "this Region has no default VPC: pass --subnet with a subnet "
                    "whose route table reaches an internet gateway"
                )
            subnets = sorted(
                ec2.describe_subnets(
                    Filters=[
                        {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
                        {"Name": "default-for-az", "Values": ["true"]},
                    ]
                )["Subnets"],
                key=lambda s: s["AvailabilityZone"],
            )
            subnets = [s for s in subnets if s["AvailabilityZone"] in offered]
            if not subnets:
                raise Failure(
                    f"no default subnet in a zone offering {instance_type}: pass "
                    "--subnet or --instance-type"
                )
            subnet = subnets[0]
        self.facts["subnet"] = subnet["SubnetId"]
        self.facts["vpc"] = subnet["VpcId"]
        where = f"{subnet['SubnetId']} in {subnet['VpcId']} ({subnet['AvailabilityZone']})"
        if self._reaches_internet(subnet):
            return f"{where}: public, SSH to the instance's public IP"
        if not aws_cli():
            raise Failure(
                f"subnet {subnet['SubnetId']} has no route to an internet gateway: SSH "
                "goes through an EC2 Instance Connect Endpoint, which needs the AWS "
                "CLI v2 (`aws ec2-instance-connect open-tunnel`); install it, or pass "
                "--subnet with a public subnet"
            )
        self.facts["private"] = True
        self.facts["vpc_cidr"] = ec2.describe_vpcs(VpcIds=[subnet["VpcId"]])["Vpcs"][0]["CidrBlock"]
        return f"{where}: private, SSH through an EC2 Instance Connect Endpoint"

    def _reaches_internet(self, subnet: dict[str, Any]) -> bool:
        ec2 = self.client("ec2")
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
        )["RouteTables"]
        if not tables:  # a subnet without its own table uses the VPC's main one
            tables = ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"]
        return any(
            route.get("GatewayId", "").startswith("igw-")
            and route.get("DestinationCidrBlock") == "0.0.0.0/0"
            for table in tables
            for route in table.get("Routes", [])
        )

    def _security_group(self) -> str:
        cidr = self.options.ssh_cidr
        if self.facts.get("private"):
            cidr = cidr or self.facts["vpc_cidr"]  # the endpoint connects from inside the VPC
        if not cidr:
            try:
                cidr = f"{self.public_ip()}/32"
            except OSError as error:
                raise Failure(
                    f"could not learn this machine's public IP from "
                    f"{CHECKIP} ({error}): pass --ssh-cidr"
                ) from None
        ec2 = self.client("ec2")
        self.made.creating = True
        group = ec2.create_security_group(
            GroupName=self.name,
            VpcId=self.facts["vpc"],
            Description="ResetAccess acceptance run: SSH from the machine running it",
            TagSpecifications=self.tags("security-group"),
        )
        self.made.security_group_id = group["GroupId"]
        self.eventually(
            lambda: ec2.authorize_security_group_ingress(
                GroupId=group["GroupId"],
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "IpRanges": [{"CidrIp": cidr, "Description": "acceptance run"}],
                    }
                ],
            )
        )
        return f"{group['GroupId']}: SSH from {cidr} only"

    def _connect_endpoint(self) -> str:
        if not self.facts.get("private"):
            raise Skipped("public subnet")
        ec2 = self.client("ec2")
        vpc_filter = [{"Name": "vpc-id", "Values": [self.facts["vpc"]]}]
        for endpoint in ec2.describe_instance_connect_endpoints(Filters=vpc_filter)[
            "InstanceConnectEndpoints"
        ]:
            if endpoint["State"] == "create-complete":
                self.facts["endpoint"] = endpoint["InstanceConnectEndpointId"]
                return f"{self.facts['endpoint']} (already in {self.facts['vpc']}; kept)"
        endpoint = ec2.create_instance_connect_endpoint(
            SubnetId=self.facts["subnet"],
            SecurityGroupIds=[self.made.security_group_id],
            ClientToken=self.name,
            TagSpecifications=self.tags("instance-connect-endpoint"),
        )["InstanceConnectEndpoint"]
        endpoint_id = endpoint["InstanceConnectEndpointId"]
        self.made.endpoint_id = self.facts["endpoint"] = endpoint_id

        def ready() -> bool:
            state = ec2.describe_instance_connect_endpoints(
                InstanceConnectEndpointIds=[endpoint_id]
            )["InstanceConnectEndpoints"][0]
            if state["State"] == "create-failed":
                raise Failure(f"{endpoint_id} could not be created: {state.get('StateMessage')}")
            return bool(state["State"] == "create-complete")

        self.wait(ready, self.options.boot_timeout, f"{endpoint_id} is not ready")
        return f"{endpoint_id} created"

    def _key_pair(self) -> str:
        made = self.client("ec2").create_key_pair(
            KeyName=self.name, KeyType="ed25519", TagSpecifications=self.tags("key-pair")
        )
        self.made.key_name = made["KeyName"]
        # Its private half is dropped unread: the run proves a reset without it.
        return f"{made['KeyName']} (private key discarded)"

    def _launch(self) -> str:
        ec2 = self.client("ec2")
        request: dict[str, Any] = {
            "ImageId": self.facts["image"],
            "InstanceType": self.facts["instance_type"],
            "MinCount": 1,
            "MaxCount": 1,
            "KeyName": self.made.key_name,
            "ClientToken": self.name,  # a retried request never launches a second instance
            "NetworkInterfaces": [
                {
                    "DeviceIndex": 0,
                    "SubnetId": self.facts["subnet"],
                    "Groups": [self.made.security_group_id],
                    "AssociatePublicIpAddress": not self.facts.get("private"),
                    "DeleteOnTermination": True,
                }
            ],
            "MetadataOptions": {"HttpTokens": "required"},
            "TagSpecifications": self.tags("instance", Name=self.name) + self.tags("volume"),
        }
        if self.options.instance_profile:
            key = "Arn" if self.options.instance_profile.startswith("arn:") else "Name"
            request["IamInstanceProfile"] = {key: self.options.instance_profile}
        instance_id = ec2.run_instances(**request)["Instances"][0]["InstanceId"]
        self.made.instance_id = instance_id
        self.echo(f"  launched {instance_id}; waiting for its status checks")

        def booted() -> bool:
            statuses = ec2.describe_instance_status(
                InstanceIds=[instance_id], IncludeAllInstances=True
            )["InstanceStatuses"]
            return (
                bool(statuses)
                and statuses[0]["InstanceState"]["Name"] == "running"
                and statuses[0]["InstanceStatus"]["Status"] == "ok"
                and statuses[0]["SystemStatus"]["Status"] == "ok"
            )

        self.wait(
            booted, self.options.boot_timeout, f"{instance_id} did not pass its status checks"
        )
        return f"{instance_id} running, status checks passed"

    def _lose_the_key(self) -> str:
        self.client("ec2").delete_key_pair(KeyName=self.made.key_name)
        name, self.made.key_name = self.made.key_name, None
        return f"key pair {name} deleted: nobody holds a key to the instance"

    def _offline_reset(self) -> str:
        return self._reset("offline")

    def _fetch_key(self) -> str:
        name = key_parameter(str(self.made.instance_id))
        value = str(
            self.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        )
        if "PRIVATE KEY" not in value:
            raise Failure(f"{name} holds no private key")
        self.facts["private_key"] = value
        return f"{name} (SecureString; never printed)"

    def _log_in(self) -> str:
        return self._login_with_stored_key()

    def _online_reset(self) -> str:
        if not self.options.online:
            raise Skipped("--no-online")
        instance_id = self.made.instance_id
        if not self.options.instance_profile and not self._ssm_online(instance_id):
            raise Skipped(
                f"SSM does not reach {instance_id}: pass --instance-profile (a role "
                "with AmazonSSMManagedInstanceCore) to test the online reset too"
            )
        self.wait(
            lambda: self._ssm_online(instance_id),
            self.options.ssm_timeout,
            f"SSM does not reach {instance_id} although it has an instance profile: "
            "check its role has AmazonSSMManagedInstanceCore and the subnet reaches SSM",
        )
        done = self._reset("online")
        self._fetch_key()
        who = self._login_with_stored_key()
        return f"{done}; logged in again: {who}"

    # -- helpers ------------------------------------------------------------------------------
    def _reset(self, mode: str) -> str:
        sfn = self.client("stepfunctions")
        name = f"acceptance-{self.run_id}-{mode}"
        self.made.executions.append(name)
        arn = sfn.start_execution(
            stateMachineArn=self.facts["state_machine"],
            name=name,
            input=json.dumps({"InstanceId": self.made.instance_id, "Mode": mode}),
        )["executionArn"]
        self.facts.setdefault("execution_arns", []).append(arn)
        described: dict[str, Any] = {}

        def ended() -> bool:
            described.update(sfn.describe_execution(executionArn=arn))
            return bool(described["status"] != "RUNNING")

        self.wait(ended, self.options.reset_timeout, f"execution {name} still runs")
        if described["status"] != "SUCCEEDED":
            cause = " ".join(str(described.get("cause", "")).split())[:300]
            raise Failure(
                f"{mode} reset {described['status']}: {described.get('error', '')}: "
                f"{cause}; the instance's result is at "
                f"{result_parameter(str(self.made.instance_id))}"
            )
        output = json.loads(described.get("output") or "{}")
        outcome = output.get("Outcome") or output.get("Action") or "done"
        return f"{name} SUCCEEDED ({outcome})"

    def _login_with_stored_key(self) -> str:
        ec2 = self.client("ec2")
        instance = ec2.describe_instances(InstanceIds=[self.made.instance_id])["Reservations"][0][
            "Instances"
        ][0]
        proof = self.login(self.facts["private_key"], instance, self)
        if "uid=" not in proof:
            raise Failure(f"logged in, but `id` printed no uid: {proof!r}")
        return proof

    def _ssm_online(self, instance_id: str | None) -> bool:
        found = self.client("ssm").describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
        )["InstanceInformationList"]
        return any(i.get("PingStatus") == "Online" for i in found)
