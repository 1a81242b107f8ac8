"""Run the real workflow file on moto with our handlers in-process, and report the world after.

The engine plays the part of the stack: it creates, inside moto, the key, lock table, helper
profile, rescue document, one function per phase (statemachine/phases.py), and the state
machine from the same definition text (statemachine/definition.py) with the same substitutions.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.client
from moto import mock_aws

from lambdas.names import (
    EXECUTION_TAG,
    JANITOR_STATUSES,
    LOCK_KEY,
    OWN_PARAMETERS,
    STACK_NAME,
    resource_name,
    ubuntu_ami_parameter,
)
from local import aws_rules, emulator
from local import iam as local_iam
from local.consistency import EventualConsistency, scale_handler_waits
from local.emulator import ACCOUNT, REGION, SsmWorld
from local.network import give_default_vpc_its_gateway
from local.scenario import Scenario
from local.volumes import build_linux_tree, build_windows_tree, read_authorized_keys
from statemachine.definition import render
from statemachine.phases import EVENT_FUNCTIONS, PHASES

# moto logs every state's error with a full repr of the interpreter; the report says it better.
logging.getLogger("moto").setLevel(logging.CRITICAL)
STACK = STACK_NAME
LOCK_TABLE = f"{STACK}-Locks"
RESCUE_DOCUMENT = f"{STACK}-Rescue"


@dataclass
class _Context:
    """The part of the Lambda context object Powertools reads."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"


class Engine:
    def __init__(self, scenario: Scenario, *, echo: Callable[[str], None] | None = None,
                 workdir: Path | None = None, janitor: bool = True,
                 prepare: Callable[[Engine], None] | None = None, copies: int = 1) -> None:
        """prepare runs inside the local AWS after the world is built, before the execution
        starts: a test's way to set up what a scenario file cannot say (a held lock...).
        copies: start that many executions of the same input at once (the lock's test); the
        report's top level is the first, `executions` lists them all."""
        self.scenario = scenario
        self.echo = echo or (lambda line: None)
        self.echo_progress = echo is not None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="reset-access-local-"))
        self.run_janitor = janitor
        self.prepare = prepare
        self.world_before: dict[str, Any] = {}
        self.api_calls: Counter[str] = Counter()
        self.calls_by_function: dict[str, Counter[str]] = defaultdict(Counter)
        self.logs = io.StringIO()
        self.secrets_written: list[str] = []
        self.ids: dict[str, str] = {}
        self.root_volumes: dict[str, str] = {}
        self._local = threading.local()
        self._fault_lock = threading.Lock()
        # Phase invocations still running: a stopped execution's Lambdas run on, as in AWS.
        self._phases_running = 0
        self._phases_done = threading.Condition()
        self.execution_arn = ""
        self.ssm_world = SsmWorld(document_name=RESCUE_DOCUMENT)
        self.iam = local_iam.for_engine(self)
        self._next_execution(copies)

    def _next_execution(self, copies: int = 1) -> None:
        """Fresh names, counts, faults and janitor results for the next execution(s)."""
        self.execution_name = f"local-{uuid.uuid4().hex[:12]}"
        self.execution_names = [self.execution_name] + [
            f"{self.execution_name}-{n}" for n in range(2, copies + 1)]
        self.api_calls.clear()
        self.calls_by_function.clear()
        self.iam.reset()
        self.janitor_results: list[Any] = []
        # How many more times each scenario fault fires (index into scenario.faults).
        self._faults_left = [fault.times for fault in self.scenario.faults]
        self._aborted = False
        self.consistency = EventualConsistency.from_spec(self.scenario.eventual_consistency)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        with self._local_aws():
            return self._execute()

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[Any], dict[str, Any]]]:
        """One local AWS and one world for many executions: each call starts one execution
        with the given input (`@NAME` resolved) and returns its report. Hundreds of generated
        inputs run this way in the time a few separate worlds would take to build."""
        with self._local_aws():
            def execute(execution_input: Any) -> dict[str, Any]:
                self.scenario.input = execution_input
                self._next_execution()
                return self._execute()

            yield execute

    def local_aws(self) -> contextlib.AbstractContextManager[None]:
        """The stack deployed in a fresh local AWS, no execution: for drivers that start their
        own (local/acceptance.py)."""
        return self._local_aws()

    @contextlib.contextmanager
    def _local_aws(self) -> Iterator[None]:
        saved_env = dict(os.environ)
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "reset-access", "POWERTOOLS_LOG_LEVEL": "INFO",
        })
        try:
            with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), \
                    emulator.corrections(self.ssm_world, self._lambda_invoker()), \
                    _CallCounter(self):
                self._create_stack()
                self._build_world()
                if self.prepare:
                    self.prepare(self)
                self.world_before = self._world()
                yield
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _create_stack(self) -> None:
        kms = boto3.client("kms", region_name=REGION)
        self.kms_key_arn = kms.create_key(Description="ResetAccess")["KeyMetadata"]["Arn"]
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=LOCK_TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
        )
        iam = boto3.client("iam", region_name=REGION)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com",
                                                         "states.amazonaws.com",
                                                         "ec2.amazonaws.com"]},
            "Action": "sts:AssumeRole"}]})
        role_arn = iam.create_role(RoleName=f"{STACK}-Role", AssumeRolePolicyDocument=trust)[
            "Role"]["Arn"]
        iam.create_role(RoleName=f"{STACK}-Helper", AssumeRolePolicyDocument=trust)
        profile = iam.create_instance_profile(InstanceProfileName=f"{STACK}-Helper")
        iam.add_role_to_instance_profile(InstanceProfileName=f"{STACK}-Helper",
                                         RoleName=f"{STACK}-Helper")
        self.helper_profile_arn = profile["InstanceProfile"]["Arn"]
        self.ssm_world.helper_profile_arn = self.helper_profile_arn

        ssm = boto3.client("ssm", region_name=REGION)
        stand_in = document_stand_in()
        ssm.create_document(Name=RESCUE_DOCUMENT, DocumentType="Command",
                            Content=json.dumps(stand_in), DocumentFormat="JSON")
        self.ssm_world.document_parameters = set(stand_in["parameters"])
        for arch, wanted in (("amd64", "x86_64"), ("arm64", "arm64")):
            _put_public_parameter(ubuntu_ami_parameter(arch), _linux_image(wanted))

        os.environ.update({
            "LOCK_TABLE_NAME": LOCK_TABLE, "KMS_KEY_ARN": self.kms_key_arn,
            "RESCUE_DOCUMENT_NAME": RESCUE_DOCUMENT,
            "HELPER_INSTANCE_PROFILE_ARN": self.helper_profile_arn,
            "HELPER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-Helper",
        })
        self._load_handlers()

        asl = render()
        lambdas = boto3.client("lambda", region_name=REGION)
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("README", "handlers run in-process by local.engine")
        substitutions = {}
        for phase in PHASES:
            arn = lambdas.create_function(
                FunctionName=f"{STACK}-{phase.name}", Runtime="python3.13", Role=role_arn,
                Handler=f"{phase.module}.handler", Code={"ZipFile": code.getvalue()},
            )["FunctionArn"]
            substitutions[phase.placeholder] = arn
        definition = re.sub(r"\$\{([A-Za-z0-9]+)\}",
                            lambda m: substitutions.get(m.group(1), m.group(0)), asl)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        self.state_machine_arn = sfn.create_state_machine(
            name=STACK, definition=definition, roleArn=role_arn, type="STANDARD",
        )["stateMachineArn"]
        os.environ["STATE_MACHINE_ARN"] = self.state_machine_arn

    def _load_handlers(self) -> None:
        """Import (or re-import, so cold-start config sees this world) every phase handler."""
        from lambdas import runtime

        runtime.reset_clients()
        runtime.fault_hook = self._fault
        scale_handler_waits()
        runtime.logger.registered_handler.stream = self.logs  # type: ignore[attr-defined]
        self.handlers: dict[str, Any] = {}
        for phase in PHASES:
            module = importlib.import_module(phase.module)
            self.handlers[f"{STACK}-{phase.name}"] = importlib.reload(module)
        # Functions no Task state invokes: EventBridge starts them in AWS, the engine does here.
        for event_function in EVENT_FUNCTIONS:
            module = importlib.reload(importlib.import_module(event_function.module))
            if hasattr(module, "CLOCK"):
                clock = _skipped_time_clock(self._wait_for_running_phases)
                setattr(module, "CLOCK", clock)  # noqa: B010 - typed Any
            self.handlers[f"{STACK}-{event_function.name}"] = module

    def _build_world(self) -> None:
        ec2 = boto3.client("ec2", region_name=REGION)
        give_default_vpc_its_gateway(ec2)
        backend = emulator._ec2_backend()
        image_id = _linux_image("x86_64")
        for name, spec in self.scenario.instances.items():
            zone = spec.get("availability_zone", f"{REGION}a")
            subnet = ec2.describe_subnets(Filters=[
                {"Name": "availability-zone", "Values": [zone]},
                {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
            tags = [{"Key": "Name", "Value": name}] + [
                {"Key": k, "Value": v} for k, v in spec.get("tags", {}).items()]
            # Every instance was launched with a key pair, the one its owner lost.
            key_name = ec2.create_key_pair(KeyName=f"{name}-lost-key")["KeyName"]
            instance_id = ec2.run_instances(
                ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                SubnetId=subnet["SubnetId"], KeyName=key_name,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"][0]["InstanceId"]
            self.ids[name] = instance_id
            instance = backend.get_instance(instance_id)
            root_device = spec.get("root_device", "/dev/xvda")
            volume_id = instance.block_device_mapping["/dev/sda1"].volume_id
            if root_device != "/dev/sda1":
                # The world's instance boots from its AMI's root device name.
                backend.detach_volume(volume_id, instance_id, "/dev/sda1")
                backend.attach_volume(volume_id, instance_id, root_device, True)
                instance.root_device_name = root_device
            instance.root_device_type = spec.get("root_device_type", "ebs")
            instance.platform = "windows" if spec.get("platform") == "windows" else None
            self.root_volumes[name] = volume_id
            if spec.get("encrypted"):
                self._encrypt(volume_id, spec.get("kms_key_state", "Enabled"))
            if spec.get("ssm"):
                self.ssm_world.agent_instances.add(instance_id)
            tree = self.workdir / "volumes" / volume_id
            tree.mkdir(parents=True)
            if spec.get("platform", "linux") == "linux":
                build_linux_tree(tree, spec.get("volume", {}))
            else:
                build_windows_tree(tree, spec.get("volume", {}))
            self.ssm_world.volume_trees[volume_id] = tree
            state = spec.get("state", "running")
            if state == "stopped":
                ec2.stop_instances(InstanceIds=[instance_id])
            elif state == "terminated":
                ec2.terminate_instances(InstanceIds=[instance_id])
            elif state in ("pending", "stopping"):
                instance._state.name = state

    def _encrypt(self, volume_id: str, key_state: str) -> None:
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key(Description="customer key of the instance's root volume")
        key_id = key["KeyMetadata"]["KeyId"]
        if key_state == "Disabled":
            kms.disable_key(KeyId=key_id)
        elif key_state == "PendingDeletion":
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        volume = emulator._ec2_backend().get_volume(volume_id)
        volume.encrypted = True
        volume.kms_key_id = key["KeyMetadata"]["Arn"]

    def _execute(self) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        execution_input = self.scenario.resolve_input(self.ids)
        arns = [sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name,
            input=json.dumps(execution_input))["executionArn"] for name in self.execution_names]
        self.execution_arn = arns[0]
        started = time.monotonic()
        shown = 0
        while True:
            described = sfn.describe_execution(executionArn=self.execution_arn)
            running = any(sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
                          for arn in arns)
            if self.echo_progress or not running:
                events = _history(sfn, self.execution_arn)
                for event in events[shown:]:
                    entered = event.get("stateEnteredEventDetails")
                    if entered:
                        self.echo(f"{time.monotonic() - started:7.2f}s  {entered['name']}")
                shown = len(events)
            if not running:
                break
            for arn in arns:
                emulator.enforce_history_quota(arn)
            if time.monotonic() - started > 600:
                raise RuntimeError("the local execution ran for 10 minutes; engine stuck?")
            time.sleep(0.1 if self.echo_progress else 0.02)
        ended = [sfn.describe_execution(executionArn=arn) for arn in arns]
        if self.run_janitor:
            for execution in ended:
                if execution["status"] in JANITOR_STATUSES:
                    self._janitor(execution)
        described = sfn.describe_execution(executionArn=self.execution_arn)
        report = self._report(sfn, described, events)
        report["executions"] = [
            {"name": e["name"], "status": e["status"], "error": e.get("error"),
             "cause": e.get("cause"),
             "states": [h["stateEnteredEventDetails"]["name"] for h in _history(sfn, arn)
                        if "stateEnteredEventDetails" in h]}
            for arn, e in zip(arns, ended, strict=True)]
        report["janitor"] = self.janitor_results
        if self.consistency:
            report["eventual_consistency"] = dict(sorted(self.consistency.injected.items()))
        return report

    def _janitor(self, execution: dict[str, Any]) -> None:
        """What EventBridge does in AWS: hand the ended execution to the janitor function."""
        name = f"{STACK}-Janitor"
        if name not in self.handlers:
            return
        status = execution["status"]
        event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
                 "detail": {"executionArn": execution["executionArn"], "status": status,
                            "name": execution["name"],
                            "stateMachineArn": self.state_machine_arn}}
        self.echo(f"  janitor for {status} execution")
        payload, errored, _ = self._invoke(_FunctionRef(name), json.dumps(event))
        self.janitor_results.append({"errored": errored, **json.loads(payload)})
        if errored:
            self.echo(f"  janitor failed: {payload}")

    # -- Lambda, faults, API counting --------------------------------------------------------
    def _lambda_invoker(self) -> Callable[..., tuple[str, bool, str]]:
        """Stands in for moto's LambdaFunction._invoke_lambda (self is the moto function)."""
        return lambda function, event=None: self._invoke(function, event)

    def _invoke(self, function: Any, event: Any = None) -> tuple[str, bool, str]:
        name = function.function_name
        handler = self.handlers[name].handler
        if isinstance(event, (bytes, bytearray)):
            event = event.decode()
        payload = json.loads(event) if isinstance(event, str) else (event or {})
        context = _Context(name, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                           uuid.uuid4().hex)
        self._local.function = name
        phase = name not in {f"{STACK}-{f.name}" for f in EVENT_FUNCTIONS}
        if phase:
            with self._phases_done:
                self._phases_running += 1
        try:
            result = handler(payload, context)
            outcome = json.dumps(result), False, ""
        except Exception as error:  # noqa: BLE001 - every error goes back to Step Functions
            error_name = getattr(error, "error_name", type(error).__name__)
            outcome = json.dumps({"errorType": error_name, "errorMessage": str(error)}), True, ""
        finally:
            self._local.function = None
            if phase:
                with self._phases_done:
                    self._phases_running -= 1
                    self._phases_done.notify_all()
        state = payload.get("state") if isinstance(payload, dict) else None
        if state and state == self.scenario.abort_at and not self._aborted:
            self._aborted = True
            boto3.client("stepfunctions", region_name=REGION).stop_execution(
                executionArn=self.execution_arn, error="Aborted",
                cause=f"stopped by the scenario at {state}")
        return outcome

    def _wait_for_running_phases(self) -> None:
        """What the janitor's wait is for in AWS: a stopped execution's phase Lambdas finish
        (Preflight may still take the lock). Here its wait takes no time, so it waits for them."""
        with self._phases_done:
            self._phases_done.wait_for(lambda: self._phases_running == 0, timeout=30)

    def _fault(self, state: str, when: str) -> None:
        from lambdas.errors import InjectedFault

        with self._fault_lock:
            for index, fault in enumerate(self.scenario.faults):
                if fault.state == state and fault.when == when and self._faults_left[index] > 0:
                    self._faults_left[index] -= 1
                    error = InjectedFault(f"injected {fault.error} {when} the side effect")
                    error.error_name = fault.error  # type: ignore[attr-defined]
                    raise error

    def count_call(self, service: str, operation: str) -> None:
        function = getattr(self._local, "function", None)
        if function:
            key = f"{service}:{operation}"
            self.api_calls[key] += 1
            self.calls_by_function[function][key] += 1

    # -- the report --------------------------------------------------------------------------
    def _report(self, sfn: Any, described: dict[str, Any], events: list[dict[str, Any]]
                ) -> dict[str, Any]:
        output = described.get("output")
        entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
        attempts = sum(1 for e in events if e["type"] in ("LambdaFunctionScheduled",
                                                            "TaskScheduled"))
        tasks = sum(1 for e in events if e["type"] == "TaskStateEntered")
        return {
            "status": described["status"],
            "error": described.get("error"),
            "cause": described.get("cause"),
            "output": json.loads(output) if output else None,
            "transitions": entered + max(0, attempts - tasks),
            "api_calls": dict(sorted(self.api_calls.items())),
            "history": json.loads(json.dumps(events, default=str)),
            "world": self._world(),
        }

    def _world(self) -> dict[str, Any]:
        ec2 = boto3.client("ec2", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        backend = emulator._ec2_backend()
        instances = {}
        for name, instance_id in self.ids.items():
            instance = backend.get_instance(instance_id)
            # A terminated instance's root volume is gone with it.
            volume = backend.volumes.get(self.root_volumes[name])
            attachment = volume.attachment if volume else None
            instances[name] = {
                "id": instance_id,
                "state": instance.state,
                "root_volume_id": self.root_volumes[name],
                "root_attached_to": attachment.instance.id if attachment else None,
                "root_attached_device": attachment.device if attachment else None,
            }
        parameters = {}
        paginator = ssm.get_paginator("get_parameters_by_path")
        for page in paginator.paginate(Path="/", Recursive=True, WithDecryption=True):
            for parameter in page["Parameters"]:
                parameters[parameter["Name"]] = {"type": parameter["Type"],
                                                 "value": parameter["Value"]}
        authorized = {}
        for name, spec in self.scenario.instances.items():
            if spec.get("platform", "linux") == "linux":
                tree = self.ssm_world.volume_trees[self.root_volumes[name]]
                authorized[name] = read_authorized_keys(tree, spec.get("volume", {}))
        return {
            "instances": instances,
            "leftovers": self._leftovers(ec2, ssm),
            "parameters": parameters,
            "authorized_keys": authorized,
            **self._images_and_backups(ec2),
            "locks": self._locks(),
        }

    def _locks(self) -> dict[str, str]:
        """Instance ID -> execution ARN of every lock held in the stack's table."""
        table = boto3.client("dynamodb", region_name=REGION)
        items = table.scan(TableName=LOCK_TABLE, ConsistentRead=True)["Items"]
        return {i[LOCK_KEY]["S"]: i.get("ExecutionArn", {}).get("S", "") for i in items}

    def _tag_values(self) -> list[str]:
        """The executions' names as the handlers tag with them (lambdas/names.py)."""
        return [resource_name(name) for name in self.execution_names]

    def _leftovers(self, ec2: Any, ssm: Any) -> list[str]:
        tag = [{"Name": f"tag:{EXECUTION_TAG}", "Values": self._tag_values()}]
        left: list[str] = []
        for reservation in ec2.describe_instances(Filters=tag)["Reservations"]:
            left += [i["InstanceId"] for i in reservation["Instances"]
                     if i["State"]["Name"] != "terminated"]
        left += [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]
        left += [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]]
        left += [g["InternetGatewayId"]
                 for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]]
        left += [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tag)["RouteTables"]]
        left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]]
        left += [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]]
        left += [k["KeyPairId"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
                Path=OWN_PARAMETERS, Recursive=True):
            left += [p["Name"] for p in page["Parameters"] if "/pending/" in p["Name"]]
        return left

    def _tagged(self, ec2: Any, resource_type: str, executions: list[str]) -> list[str]:
        """IDs of the resources of that type tagged with these executions. DescribeTags, not a
        tag-filtered DescribeImages/DescribeSnapshots: moto walks its ~1,300 public images
        and snapshots for those, which made each report cost a third of a second."""
        filters = [{"Name": "key", "Values": [EXECUTION_TAG]},
                   {"Name": "value", "Values": executions},
                   {"Name": "resource-type", "Values": [resource_type]}]
        return [t["ResourceId"] for t in ec2.describe_tags(Filters=filters)["Tags"]]

    def _existing(self, ec2: Any, resource_type: str, executions: list[str]
                  ) -> list[dict[str, Any]]:
        """Those of them that still exist (moto keeps a deleted resource's tags; an ID
        filter, unlike ImageIds/SnapshotIds, does not fail on an ID that is gone)."""
        ids = self._tagged(ec2, resource_type, executions)
        if not ids:
            return []
        if resource_type == "image":
            return list(ec2.describe_images(
                Filters=[{"Name": "image-id", "Values": ids}])["Images"])
        return list(ec2.describe_snapshots(
            Filters=[{"Name": "snapshot-id", "Values": ids}])["Snapshots"])

    def _images_and_backups(self, ec2: Any) -> dict[str, Any]:
        """`images`: the AMIs the (first) execution made, backup and password-enabled, with
        name and tags. `backups`: the AMIs and standalone snapshots of all its copies."""
        images = self._existing(ec2, "image", self._tag_values())
        snapshots = self._existing(ec2, "snapshot", self._tag_values())
        made_by_first = {}
        for image in images:
            tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
            if tags.get(EXECUTION_TAG) == resource_name(self.execution_name):
                made_by_first[image["ImageId"]] = {"name": image["Name"], "tags": tags}
        return {
            "backups": {
                "images": [i["ImageId"] for i in images],
                "snapshots": [s["SnapshotId"] for s in snapshots if not s.get(
                    "Description", "").startswith("Created by CreateImage")],
            },
            "images": made_by_first,
        }


@dataclass
class _FunctionRef:
    function_name: str


class _CallCounter:
    """Count the AWS API calls the handlers make (not the interpreter's own Lambda calls)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.original = botocore.client.BaseClient._make_api_call

    def __enter__(self) -> None:
        engine, original = self.engine, self.original

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.endpoint_prefix
            engine.count_call(service, operation)
            if operation == "PutParameter" and params.get("Type") == "SecureString":
                # Every secret ever written, also those a failed run deleted again: the
                # tests look for each of them where no secret may be.
                engine.secrets_written.append(str(params.get("Value", "")))
            engine.iam.authorize(getattr(engine._local, "function", None), service,
                                 operation, params)
            aws_rules.check(client, operation, params)
            lag = engine.consistency if getattr(engine._local, "function", None) else None
            if lag:
                lag.before(service, operation, params)
            response = original(client, operation, params)
            if lag:
                lag.after(service, operation, response)
            return response

        botocore.client.BaseClient._make_api_call = counted

    def __exit__(self, *exc: Any) -> None:
        botocore.client.BaseClient._make_api_call = self.original


def _skipped_time_clock(settle: Callable[[], None]) -> Any:
    """The janitor's clock here: its waits take no time, but count against its 15 minutes,
    so a world that never settles ends the janitor as it would in AWS. Each wait first lets
    the phases still running finish (settle), as the same wait would in AWS."""
    from lambdas.logic.janitor import Clock

    skipped = [0.0]

    def sleep(seconds: float) -> None:
        settle()
        skipped[0] += seconds

    return Clock(now=lambda: time.time() + skipped[0], sleep=sleep,
                 remaining=lambda: 900.0 - skipped[0])


def _linux_image(architecture: str) -> str:
    """One of moto's own Linux images (read from the backend: DescribeImages of all of moto's
    public images costs a second)."""
    backend = emulator._ec2_backend()
    return str(next(ami.id for ami in backend.amis.values()
                    if not ami.platform and ami.architecture == architecture))


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events


def _put_public_parameter(name: str, value: str) -> None:
    """AWS publishes these; callers cannot create /aws/ names, so the world seeds them."""
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    ssm_backends[ACCOUNT][REGION]._parameters[name].append(Parameter(  # type: ignore[abstract]
        account_id=ACCOUNT, name=name, value=value, parameter_type="String", description=None,
        allowed_pattern=None, keyid=None, last_modified_date=utcnow(), version=1,
        data_type="aws:ec2:image"))


def document_stand_in() -> dict[str, Any]:
    """The rescue document's interface (the stack's document declares the same parameters:
    tests/stack checks it); its script is replaced by the emulator running the agent itself
    (see local.emulator._send_command)."""
    return {
        "schemaVersion": "2.2",
        "description": "ResetAccess rescue agent (local stand-in)",
        "parameters": {"Platform": {"type": "String"}, "Target": {"type": "String"},
                       "PublicKey": {"type": "String", "default": ""}},
        "mainSteps": [{"action": "aws:runShellScript", "name": "rescue",
                       "inputs": {"runCommand": ["true"]}}],
    }
