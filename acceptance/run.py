"""One acceptance run: a throwaway instance whose key is lost, reset, logged into, deleted.

Every AWS request goes through the boto3 clients the caller's `clients` factory makes: in an
account those talk to AWS, in `make test` to the local engine (local/acceptance.py). What the
run makes is recorded the moment AWS returns its ID, and `clean_up` deletes it on every path
(success, a failed step, an AWS error, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from lambdas.names import (
    ACCEPTANCE_TAG,
    EXECUTION_TAG,
    LOCK_KEY,
    OWN_PARAMETERS,
    STACK_NAME,
    key_parameter,
    result_parameter,
)

# AWS publishes the latest Amazon Linux 2023 image ID here for every Region.
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
# The smallest Nitro types: a Xen type would test a path our helpers refuse.
SMALLEST_NITRO = {"x86_64": "t3.nano", "arm64": "t4g.nano"}
LOGIN_USER = "ec2-user"
STEPS = (
    "credentials",
    "stack",
    "image",
    "network",
    "security group",
    "connect endpoint",
    "key pair",
    "launch",
    "lose the key",
    "offline reset",
    "fetch key",
    "log in",
    "online reset",
)

Clients = Callable[[str], Any]
Echo = Callable[[str], None]


class Failure(Exception):
    """A step failed for a reason the user can act on: one line, no traceback."""


class Login(Protocol):
    """Logs in to the instance with the stored private key; says how, and what `id` printed."""

    def __call__(self, private_key: str, instance: dict[str, Any], run: Run) -> str: ...


@dataclass
class Options:
    stack: str = STACK_NAME
    subnet_id: str | None = None
    architecture: str = "x86_64"
    instance_type: str | None = None
    # An instance profile with AmazonSSMManagedInstanceCore lets the online reset run too.
    instance_profile: str | None = None
    profile: str | None = None  # the AWS CLI's, for its EC2 Instance Connect tunnel
    ssh_cidr: str | None = None
    online: bool = True
    reset_timeout: float = 30 * 60
    boot_timeout: float = 10 * 60
    login_timeout: float = 5 * 60
    ssm_timeout: float = 5 * 60
    cleanup_timeout: float = 15 * 60
    poll_seconds: float = 5.0


@dataclass
class StepResult:
    name: str
    outcome: str  # ok, failed, skipped, interrupted
    seconds: float
    detail: str = ""


@dataclass
class Made:
    """What this run created, by ID, recorded as soon as AWS returns it."""

    # Set before the first create: from then on clean-up also looks for the run's tag, which
    # finds what a create made even when its answer never arrived (Ctrl-C, a lost response).
    creating: bool = False
    key_name: str | None = None
    security_group_id: str | None = None
    endpoint_id: str | None = None
    instance_id: str | None = None
    executions: list[str] = field(default_factory=list)


@dataclass
class Report:
    steps: list[StepResult] = field(default_factory=list)
    cleanup: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    left: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            all(s.outcome in ("ok", "skipped") for s in self.steps + self.cleanup)
            and bool(self.steps)
            and not self.left
        )

    def lines(self) -> list[str]:
        out = ["", "acceptance run:"]
        for step in self.steps:
            out.append(f"  {step.name:<17} {step.outcome:<11} {step.seconds:6.1f} s  {step.detail}")
        out.append("clean-up:")
        for step in self.cleanup:
            out.append(f"  {step.name:<17} {step.outcome:<11} {step.seconds:6.1f} s  {step.detail}")
        out.append(f"left behind: {', '.join(self.left) if self.left else 'nothing'}")
        out.append(
            f"took {self.seconds / 60:.1f} min ({self.seconds:.0f} s); "
            f"{'PASSED' if self.passed else 'FAILED'}"
        )
        return out


def explain(error: BaseException, step: str) -> str:
    """One line naming the cause and what to do."""
    if isinstance(error, Failure):
        return str(error)
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile"
    if isinstance(error, NoRegionError):
        return "no AWS Region: pass --region or set AWS_REGION"
    if isinstance(error, ProfileNotFound):
        return f"{error}: pass an existing --profile (see ~/.aws/config)"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS ({error}); check the network and the Region"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        operation = getattr(error, "operation_name", "")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"{operation} was denied ({code}): your credentials need it for the "
                f"{step} step; docs/acceptance-policy.json lists every right the run uses"
            )
        if code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "AuthFailure",
        ):
            return f"your AWS credentials are not valid ({code}): refresh them and run again"
        return f"{operation} failed: {code}: {message}"
    if isinstance(error, BotoCoreError):
        return f"AWS SDK error: {error}"
    return f"{type(error).__name__}: {error}"


class Run:
    """One acceptance run. `fault(step)` is called as each step starts (tests inject there)."""

    def __init__(
        self,
        clients: Clients,
        login: Login,
        options: Options | None = None,
        *,
        echo: Echo = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        fault: Callable[[str], None] | None = None,
        public_ip: Callable[[], str] | None = None,
        shield: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ) -> None:
        self.clients = clients
        self.login = login
        self.options = options or Options()
        self.echo = echo
        self.sleep = sleep
        self.clock = clock
        self.fault = fault or (lambda step: None)
        self.public_ip = public_ip or checkip
        self.shield = shield or contextlib.nullcontext
        self.run_id = uuid.uuid4().hex[:12]
        self.name = f"reset-access-acceptance-{self.run_id}"
        self.made = Made()
        self.report = Report()
        self.facts: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.clients(service)
        return self._clients[service]

    # -- the run ------------------------------------------------------------------------------
    def __call__(self) -> Report:
        started = self.clock()
        try:
            for name in STEPS:
                if not self._step(name, getattr(self, "_" + name.replace(" ", "_"))):
                    break
        finally:
            with self.shield():
                self.clean_up()
            self.report.seconds = self.clock() - started
        return self.report

    def _step(self, name: str, action: Callable[[], str]) -> bool:
        began = self.clock()
        self.echo(f"{name} ...")
        try:
            self.fault(name)
            detail = action()
        except KeyboardInterrupt:
            self._record(self.report.steps, name, "interrupted", began, "Ctrl-C: cleaning up")
            raise
        except Skipped as skipped:
            self._record(self.report.steps, name, "skipped", began, str(skipped))
            return True
        except Exception as error:  # noqa: BLE001 - every failure becomes one line and a clean-up
            self._record(self.report.steps, name, "failed", began, explain(error, name))
            return False
        self._record(self.report.steps, name, "ok", began, detail)
        return True

    def _record(
        self, where: list[StepResult], name: str, outcome: str, began: float, detail: str
    ) -> None:
        result = StepResult(name, outcome, self.clock() - began, detail)
        where.append(result)
        prefix = "  " if where is self.report.steps else f"clean-up {name}: "
        self.echo(f"{prefix}{outcome}: {detail}" if detail else f"{prefix}{outcome}")

    # -- the steps ----------------------------------------------------------------------------
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
            TagSpecifications=self._tags("security-group"),
        )
        self.made.security_group_id = group["GroupId"]
        self._eventually(
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
            TagSpecifications=self._tags("instance-connect-endpoint"),
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

        self._wait(ready, self.options.boot_timeout, f"{endpoint_id} is not ready")
        return f"{endpoint_id} created"

    def _key_pair(self) -> str:
        made = self.client("ec2").create_key_pair(
            KeyName=self.name, KeyType="ed25519", TagSpecifications=self._tags("key-pair")
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
            "TagSpecifications": self._tags("instance", Name=self.name) + self._tags("volume"),
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

        self._wait(
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
        self._wait(
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

        self._wait(ended, self.options.reset_timeout, f"execution {name} still runs")
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

    def _tags(self, resource_type: str, **extra: str) -> list[dict[str, Any]]:
        tags = [{"Key": ACCEPTANCE_TAG, "Value": self.run_id}]
        tags += [{"Key": k, "Value": v} for k, v in extra.items()]
        return [{"ResourceType": resource_type, "Tags": tags}]

    def _wait(self, done: Callable[[], bool], timeout: float, message: str) -> None:
        deadline = self.clock() + timeout
        while True:
            try:
                if done():
                    return
            except ClientError as error:
                # EC2 answers *.NotFound for a while after a create (eventual consistency).
                if not _not_found(error):
                    raise
            if self.clock() > deadline:
                raise Failure(f"{message} after {timeout / 60:.0f} min")
            self.sleep(self.options.poll_seconds)

    def _eventually(self, call: Callable[[], Any]) -> Any:
        """A call on a resource just created: retried while EC2 still answers NotFound."""
        result: list[Any] = []

        def attempt() -> bool:
            result.append(call())
            return True

        self._wait(attempt, 60, "the resource just created is still unknown to EC2")
        return result[-1]

    # -- clean-up -----------------------------------------------------------------------------
    def clean_up(self) -> None:
        """Delete what this run made; each action runs even if one before it failed."""
        for name, action in (
            ("executions", self._end_executions),
            ("instance", self._terminate),
            ("volumes", self._delete_volumes),
            ("connect endpoint", self._delete_endpoint),
            ("key pair", self._delete_key_pair),
            ("security group", self._delete_security_group),
            ("backups", self._delete_backups),
            ("parameters", self._delete_parameters),
        ):
            began = self.clock()
            try:
                detail = action()
            except Exception as error:  # noqa: BLE001 - the next deletion still runs
                self._record(self.report.cleanup, name, "failed", began, explain(error, name))
                continue
            if detail:
                self._record(self.report.cleanup, name, "ok", began, detail)
        self.report.left = self.leftovers()
        self.facts.pop("private_key", None)

    def _end_executions(self) -> str:
        sfn = self.client("stepfunctions")
        stopped = []
        for arn in self.facts.get("execution_arns", []):
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                sfn.stop_execution(
                    executionArn=arn,
                    error="AcceptanceCleanUp",
                    cause="the acceptance run was interrupted",
                )
                stopped.append(arn.rsplit(":", 1)[-1])
        if not stopped:
            return ""
        # The stack's janitor rolls the stopped run back and releases the instance's lock.
        table = self.facts.get("lock_table")
        if table and self.made.instance_id:
            dynamodb = self.client("dynamodb")
            for arn in self.facts.get("execution_arns", []):
                sfn.describe_execution(executionArn=arn)

            def released() -> bool:
                return "Item" not in dynamodb.get_item(
                    TableName=table,
                    Key={LOCK_KEY: {"S": self.made.instance_id}},
                    ConsistentRead=True,
                )

            self._wait(
                released,
                self.options.cleanup_timeout,
                f"the janitor did not release {self.made.instance_id}",
            )
        return f"stopped {', '.join(stopped)}; the janitor rolled it back"

    def _terminate(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        found = [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=self._mine())["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        ]
        ids = sorted(set(found) | ({self.made.instance_id} if self.made.instance_id else set()))
        if not ids:
            return ""
        self.made.instance_id = self.made.instance_id or ids[0]
        self._eventually(lambda: ec2.terminate_instances(InstanceIds=ids))

        def gone() -> bool:
            reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
            return all(
                i["State"]["Name"] == "terminated" for r in reservations for i in r["Instances"]
            )

        self._wait(gone, self.options.cleanup_timeout, f"{', '.join(ids)} did not terminate")
        return f"{', '.join(ids)} terminated"

    def _delete_volumes(self) -> str:
        """A root volume that a stopped run left detached does not go with the instance, and
        one still detaching from the terminated instance is deleted once it is free."""
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        deleted: list[str] = []

        def settled() -> bool:
            busy = False
            for volume in ec2.describe_volumes(Filters=self._mine())["Volumes"]:
                if volume["State"] == "available":
                    ec2.delete_volume(VolumeId=volume["VolumeId"])
                    deleted.append(volume["VolumeId"])
                elif volume["State"] == "in-use" and any(
                    a["InstanceId"] == self.made.instance_id for a in volume.get("Attachments", [])
                ):
                    busy = True  # still detaching from the terminated instance
            return not busy

        self._wait(settled, self.options.cleanup_timeout, "a volume of the run is still attached")
        return f"deleted {', '.join(deleted)}" if deleted else ""

    def _delete_endpoint(self) -> str:
        """Only one this run created; the security group can go once the endpoint has."""
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        ids = (
            {
                e["InstanceConnectEndpointId"]
                for e in ec2.describe_instance_connect_endpoints(Filters=self._mine())[
                    "InstanceConnectEndpoints"
                ]
            }
            if self.facts.get("private")
            else set()
        )
        ids |= {self.made.endpoint_id} if self.made.endpoint_id else set()
        for endpoint_id in sorted(ids):
            ec2.delete_instance_connect_endpoint(InstanceConnectEndpointId=endpoint_id)

        def gone() -> bool:
            left = ec2.describe_instance_connect_endpoints(Filters=self._mine())[
                "InstanceConnectEndpoints"
            ]
            return not [e for e in left if e["State"] != "delete-complete"]

        if ids:
            self._wait(gone, self.options.cleanup_timeout, "the endpoint is still there")
        self.made.endpoint_id = None
        return f"{', '.join(sorted(ids))} deleted" if ids else ""

    def _delete_key_pair(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        names = {k["KeyName"] for k in ec2.describe_key_pairs(Filters=self._mine())["KeyPairs"]}
        names |= {self.made.key_name} if self.made.key_name else set()
        for name in sorted(names):
            ec2.delete_key_pair(KeyName=name)
        self.made.key_name = None
        return f"{', '.join(sorted(names))} deleted" if names else ""

    def _delete_security_group(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        groups = [
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=self._mine())["SecurityGroups"]
        ]
        group = self.made.security_group_id or (groups[0] if groups else None)
        if not group:
            return ""

        def deleted() -> bool:
            try:
                ec2.delete_security_group(GroupId=group)
            except ClientError as error:
                # The terminated instance's network interface holds it for a while.
                if error.response.get("Error", {}).get("Code") == "DependencyViolation":
                    return False
                raise
            return True

        self._wait(deleted, self.options.cleanup_timeout, f"{group} is still in use")
        self.made.security_group_id = None
        return f"{group} deleted"

    def _delete_backups(self) -> str:
        """The workflow starts its backup and moves on: an AMI or snapshot still pending is
        waited for, since its snapshots cannot be deleted while the AMI is being made."""
        if not self.made.executions:
            return ""
        ec2 = self.client("ec2")
        made_by_run = [{"Name": f"tag:{EXECUTION_TAG}", "Values": self.made.executions}]
        images: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []

        def settled() -> bool:
            images[:] = ec2.describe_images(Owners=["self"], Filters=made_by_run)["Images"]
            snapshots[:] = ec2.describe_snapshots(OwnerIds=["self"], Filters=made_by_run)[
                "Snapshots"
            ]
            return not any(i["State"] == "pending" for i in images) and not any(
                s["State"] == "pending" for s in snapshots
            )

        self._wait(settled, self.options.cleanup_timeout, "a backup of the run is still pending")
        deleted: list[str] = []
        for image in images:
            ec2.deregister_image(ImageId=image["ImageId"])
            deleted.append(image["ImageId"])
            for mapping in image.get("BlockDeviceMappings", []):
                snapshot = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot:
                    ec2.delete_snapshot(SnapshotId=snapshot)
                    deleted.append(snapshot)
        for snapshot in snapshots:
            if snapshot["SnapshotId"] not in deleted:
                ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
                deleted.append(snapshot["SnapshotId"])
        return f"deleted {', '.join(deleted)}" if deleted else ""

    def _delete_parameters(self) -> str:
        ssm = self.client("ssm")
        names = self._parameters()
        for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
            ssm.delete_parameters(Names=names[start : start + 10])
        return f"deleted {', '.join(names)}" if names else ""

    def _parameters(self) -> list[str]:
        instance_id = self.made.instance_id
        if not instance_id:
            return []
        ssm = self.client("ssm")
        names = []
        key = key_parameter(instance_id)
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            names.append(ssm.get_parameter(Name=key)["Parameter"]["Name"])
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=f"{OWN_PARAMETERS}/{instance_id}", Recursive=True
        ):
            names += [p["Name"] for p in page["Parameters"]]
        return names

    def _mine(self) -> list[dict[str, Any]]:
        return [{"Name": f"tag:{ACCEPTANCE_TAG}", "Values": [self.run_id]}]

    def leftovers(self) -> list[str]:
        """What this run made that still exists, each with the command that deletes it."""
        left: list[str] = []
        if not self.made.creating:
            return left
        try:
            ec2 = self.client("ec2")
            for reservation in ec2.describe_instances(Filters=self._mine())["Reservations"]:
                left += [
                    f"{i['InstanceId']} (aws ec2 terminate-instances --instance-ids "
                    f"{i['InstanceId']})"
                    for i in reservation["Instances"]
                    if i["State"]["Name"] not in ("terminated", "shutting-down")
                ]
            left += [
                f"{v['VolumeId']} (aws ec2 delete-volume --volume-id {v['VolumeId']})"
                for v in ec2.describe_volumes(Filters=self._mine())["Volumes"]
                if v["State"] != "deleting"
            ]
            left += [
                f"{k['KeyName']} (aws ec2 delete-key-pair --key-name {k['KeyName']})"
                for k in ec2.describe_key_pairs(Filters=self._mine())["KeyPairs"]
            ]
            left += [
                f"{g['GroupId']} (aws ec2 delete-security-group --group-id {g['GroupId']})"
                for g in ec2.describe_security_groups(Filters=self._mine())["SecurityGroups"]
            ]
            if self.made.executions:
                made_by_run = [{"Name": f"tag:{EXECUTION_TAG}", "Values": self.made.executions}]
                left += [
                    f"{i['ImageId']} (aws ec2 deregister-image --image-id {i['ImageId']})"
                    for i in ec2.describe_images(Owners=["self"], Filters=made_by_run)["Images"]
                ]
                left += [
                    f"{s['SnapshotId']} (aws ec2 delete-snapshot --snapshot-id {s['SnapshotId']})"
                    for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=made_by_run)[
                        "Snapshots"
                    ]
                ]
            left += [f"{n} (aws ssm delete-parameter --name {n})" for n in self._parameters()]
        except Exception as error:  # noqa: BLE001 - the report must still print
            left.append(
                f"unknown: could not list what is left ({explain(error, 'check')}); "
                f"look for tag {ACCEPTANCE_TAG}={self.run_id}"
            )
        return left


class Skipped(Exception):
    """A step that does not apply to this account (said why in the report)."""


def _not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")).endswith(".NotFound")


CHECKIP = "https://checkip.amazonaws.com"


def aws_cli() -> str | None:
    """The AWS CLI, which opens EC2 Instance Connect Endpoint tunnels for ssh."""
    import shutil

    return shutil.which("aws")


def checkip() -> str:
    """This machine's public IP as AWS sees it: the security group lets SSH in from it only."""
    from urllib.request import urlopen

    with urlopen(CHECKIP, timeout=10) as answer:
        return str(answer.read().decode().strip())
