"""Where moto differs from AWS, or lacks what ResetAccess needs: corrected here, in one place.

Each correction states the AWS behaviour it restores; tests/workflow/test_emulator.py checks
each against that documented behaviour. The workflow's ASL is never bent to fit moto.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import json
import os
import re
import secrets
import string
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from jsonpath_ng.ext.parser import parse as parse_json_path
from moto.core.responses import ActionResult

from lambdas.names import WINDOWS_TOOL_COMMAND, WINDOWS_TOOL_DOCUMENT, password_parameter
from local import ebs_attachments, ebs_default_key, ec2_tags, eventbridge, replace_root
from local.network import no_way_to_ssm
from local.replace_root import EbsWorld
from local.rescue_run import python_gate, send_command_response, stale_version

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
# A Retry's IntervalSeconds here lasts this fraction of it (AWS waits the whole interval).
RETRY_TIME_SCALE = 0.01

# A definite path names one node: only `.name` and `[n]` steps, no wildcard, slice or filter.
_DEFINITE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\['[^']*'\])*$")


def aws_extract_json(path: str, data: Any) -> Any:
    """AWS: a definite JSONPath such as `$[0].helper` yields the node itself; only a path with
    a wildcard, slice or filter yields a list. moto wraps a value found under an array index
    in a list (moto/stepfunctions/parser/asl/utils/json_path.py)."""
    from moto.stepfunctions.parser.asl.utils import json_path

    if _DEFINITE_PATH.match(path):
        matches = parse_json_path(path).find(data)
        if not matches:
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        return matches[0].value
    return _MOTO_EXTRACT_JSON(path, data)


def _moto_extract_json() -> Callable[[str, Any], Any]:
    from moto.stepfunctions.parser.asl.utils import json_path

    return json_path.extract_json


_MOTO_EXTRACT_JSON = _moto_extract_json()
_JSON_PATH_USERS = (
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.intrinsic.argument.argument",
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations"
    ".string_operators",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations"
    ".boolean_equals",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations"
    ".numeric",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations"
    ".timestamp_operators",
)


@dataclass
class Invocation:
    status: str
    code: int
    stdout: str
    stderr: str


@dataclass
class SsmWorld:
    """What SSM knows that moto does not: which instances run an agent, and what commands did."""

    document_name: str
    # The parameters our rescue document declares (AWS refuses any other).
    document_parameters: set[str] = field(default_factory=set)
    agent_instances: set[str] = field(default_factory=set)
    helper_profile_arn: str = ""
    # The helper profile of every location's twin (each account has its own).
    helper_profile_arns: set[str] = field(default_factory=set)
    volume_trees: dict[str, Path] = field(default_factory=dict)
    invocations: dict[tuple[str, str], Invocation] = field(default_factory=dict)
    commands_sent: list[dict[str, Any]] = field(default_factory=list)
    windows_passwords_reset: list[str] = field(default_factory=list)
    # An instance's python3 version where it is not the engine's own (the rescue document's
    # first step checks it).
    python3: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Volume copies and root replacement (local/replace_root.py), over the same volume trees.
    ebs: EbsWorld = field(default_factory=EbsWorld)

    def __post_init__(self) -> None:
        self.ebs.volume_trees = self.volume_trees


def ec2_backend() -> Any:
    """EC2 of the location whose call is served (local/locations.py; the engine's own: home)."""
    from moto.ec2.models import ec2_backends

    from local import locations

    account, region = locations.current()
    return ec2_backends[account][region]


def _instance(instance_id: str) -> Any:
    try:
        return ec2_backend().get_instance(instance_id)
    except Exception:  # noqa: BLE001 - moto raises its own not-found types
        return None


def _managed(world: SsmWorld, instance_id: str) -> bool:
    instance = _instance(instance_id)
    if instance is None or instance.state != "running":
        return False
    if instance_id in world.agent_instances:
        return True
    profile = instance.iam_instance_profile or {}
    arn = profile.get("Arn") if isinstance(profile, dict) else getattr(profile, "arn", None)
    # AWS: the agent must reach SSM over the network (local/network.py); moto needs nothing.
    return arn in {world.helper_profile_arn, *world.helper_profile_arns} - {""} and (
        no_way_to_ssm(ec2_backend(), instance) is None
    )


def _describe_instance_information(world: SsmWorld) -> Callable[[Any], ActionResult]:
    """AWS: DescribeInstanceInformation lists managed nodes with PingStatus Online while their
    agent reports in. moto does not implement it; here an instance is managed when it runs and
    either the scenario says it has an SSM agent or it carries the helper's instance profile."""

    def describe(self: Any) -> ActionResult:
        wanted: set[str] | None = None
        for item in self._get_param("Filters", []) or []:
            if item.get("Key") == "InstanceIds":
                wanted = set(item.get("Values", []))
        for item in self._get_param("InstanceInformationFilterList", []) or []:
            if item.get("key") == "InstanceIds":
                wanted = set(item.get("valueSet", []))
        backend = ec2_backend()
        found = []
        for reservation in backend.reservations.values():
            for instance in reservation.instances:
                if wanted is not None and instance.id not in wanted:
                    continue
                if _managed(world, instance.id):
                    found.append(
                        {
                            "InstanceId": instance.id,
                            "PingStatus": "Online",
                            "PlatformType": "Windows"
                            if instance.platform == "windows"
                            else "Linux",
                            "ResourceType": "EC2Instance",
                            "AgentVersion": "3.3.0.0",
                        }
                    )
        return ActionResult({"InstanceInformationList": found})

    return describe


def _send_command(world: SsmWorld, original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS: SendCommand to an instance that is not a managed, online node fails with
    InvalidInstanceId; the command then runs the document's script on each instance and
    reports its exit status and output. moto reports Success for anything without running it.
    Here our rescue document runs the real agent against the volume's directory tree, and AWS's
    Windows tool is emulated (_ec2rescue_for_windows_reset_access).
    AWS: a parameter the document does not declare fails the call with InvalidParameters.
    AWS: a command sent with InstanceIds and no Targets runs on exactly those instances. moto
    adds every instance of the Region (its Targets lookup with no targets matches all), in the
    caller's own list; here the command keeps only the instances asked for."""
    from moto.ssm.exceptions import SSMException as RESTError

    def send(self: Any, **kwargs: Any) -> Any:
        instance_ids = list(dict.fromkeys(kwargs.get("instance_ids") or []))
        kwargs["instance_ids"] = list(instance_ids)
        if not instance_ids:
            raise RESTError("InvalidParameters", "InstanceIds or Targets must be given")
        for instance_id in instance_ids:
            if not _managed(world, instance_id):
                raise RESTError(
                    "InvalidInstanceId",
                    f"Instances [[{instance_id}]] not in a valid state for account "
                    f"{self.account_id}",
                )
        document = kwargs.get("document_name")
        undeclared = set(kwargs.get("parameters") or {}) - world.document_parameters
        if document == world.document_name and undeclared:
            raise RESTError(
                "InvalidParameters",
                f"Parameters {sorted(undeclared)} are not defined by {document}",
            )
        command = original(self, **kwargs)
        if not kwargs.get("targets"):
            command.instance_ids = instance_ids
            command.invocations = [
                invocation
                for invocation in command.invocations
                if invocation["InstanceId"] in instance_ids
            ]
        run = {
            world.document_name: _run_rescue,
            WINDOWS_TOOL_DOCUMENT: _ec2rescue_for_windows_reset_access,
        }.get(document or "")
        if run is not None:
            params = {
                k: v[0] if isinstance(v, list) and v else v
                for k, v in (kwargs.get("parameters") or {}).items()
            }
            with world.lock:
                world.commands_sent.append(
                    {"CommandId": command.command_id, "DocumentName": document, **params}
                )
            for instance_id in instance_ids:
                world.invocations[(command.command_id, instance_id)] = run(
                    world, instance_id, params
                )
        return command

    return send


def _agent_failure(error: str) -> Invocation:
    """What the agent reports when it cannot even start on the volume."""
    report = json.dumps({"ok": False, "error": error})
    return Invocation("Failed", 1, report + "\n", error + "\n")


def _run_rescue(world: SsmWorld, instance_id: str, params: dict[str, str]) -> Invocation:
    stale = stale_version()
    if stale:
        return _agent_failure(stale)
    unsuitable = python_gate(world.python3.get(instance_id))
    if unsuitable:
        return Invocation(*unsuitable)
    target = params.get("Target", "")
    instance = _instance(instance_id)
    if target == "/":
        volume_id = instance.block_device_mapping[instance.root_device_name].volume_id
    else:
        volume_id = target
        attached = {v.volume_id: device for device, v in instance.block_device_mapping.items()}
        if volume_id not in attached:
            return _agent_failure(
                f"volume {volume_id} is not attached to this instance "
                f"({instance_id}): its device never appeared"
            )
    tree = world.volume_trees.get(volume_id)
    if tree is None:
        return _agent_failure(f"volume {volume_id} holds no filesystem the agent recognises")
    argv = [
        sys.executable,
        "-m",
        "rescue",
        "--platform",
        params.get("Platform", "linux"),
        "--root",
        str(tree),
    ]
    if params.get("PublicKey"):
        argv += ["--public-key", params["PublicKey"]]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    return Invocation(
        "Success" if done.returncode == 0 else "Failed", done.returncode, done.stdout, done.stderr
    )


def _ec2rescue_for_windows_reset_access(
    world: SsmWorld, instance_id: str, params: dict[str, str]
) -> Invocation:
    """AWS's Run Command document AWSSupport-RunEC2RescueForWindowsTool, Command ResetAccess,
    emulated here and only here. AWS: on a Windows instance it downloads EC2Rescue for Windows,
    which resets the local Administrator password on the RUNNING instance to a random one and
    stores it as SecureString /EC2Rescue/Passwords/<instance id>, encrypted with the KMS key ID
    given in Parameters (alias/aws/ssm when empty), with the instance's own role; the output
    names the parameter, never the password. Its steps are PowerShell: on Linux they do not
    run. Not emulated: the instance role's permissions (ssm:PutParameter, kms:Encrypt), which
    AWS checks on the instance, not on the caller."""
    from moto.ssm.models import ssm_backends

    instance = _instance(instance_id)
    if params.get("Command") != WINDOWS_TOOL_COMMAND:
        message = f"emulated only for Command {WINDOWS_TOOL_COMMAND}, not {params.get('Command')!r}"
        return Invocation("Failed", 1, "", message + "\n")
    if instance is None or instance.platform != "windows":
        message = (
            "Step execution skipped due to unsupported platform: this document's steps "
            "run PowerShell on Windows only"
        )
        return Invocation("Failed", 1, "", message + "\n")
    name = password_parameter(instance_id)
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*()-_=+"
    password = "".join(secrets.choice(alphabet) for _ in range(32))
    from local import locations

    account, region = locations.current()
    ssm_backends[account][region].put_parameter(
        name=name,
        description=f"Administrator password of {instance_id} (EC2Rescue)",
        value=password,
        parameter_type="SecureString",
        allowed_pattern="",
        keyid=params.get("Parameters") or "alias/aws/ssm",
        overwrite=True,
        tags=[],
        data_type="text",
        tier=None,
        policies=None,
    )
    with world.lock:
        world.windows_passwords_reset.append(instance_id)
    output = (
        "EC2Rescue for Windows Server: ResetAccess\n"
        "The local Administrator password was reset. The new password is stored in "
        f"Parameter Store as the SecureString {name}.\n"
    )
    return Invocation("Success", 0, output, "")


def _get_invocation(world: SsmWorld, original: Callable[..., Any]) -> Callable[..., Any]:
    def get(self: Any, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        invocation = dict(original(self, instance_id, plugin_name))
        ran = world.invocations.get((self.command_id, instance_id))
        if ran is not None:
            invocation.update(
                {
                    "Status": ran.status,
                    "StatusDetails": ran.status,
                    "ResponseCode": ran.code,
                    "StandardOutputContent": ran.stdout,
                    "StandardErrorContent": ran.stderr,
                }
            )
        return invocation

    return get


def _validate_block_device_mapping(
    original: Callable[[dict[str, Any]], None],
) -> Callable[[dict[str, Any]], None]:
    """AWS: a block device mapping that overrides one of the AMI's devices (the helper's root,
    to make it encrypted gp3) may leave out size and snapshot; they come from the AMI. moto
    demands one of them; the images moto ships have 8 GiB root snapshots, so that is the size."""

    def validate(device_mapping: dict[str, Any]) -> None:
        ebs = device_mapping.get("Ebs")
        if isinstance(ebs, dict) and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            ebs["VolumeSize"] = 8
        original(device_mapping)

    return validate


def create_image_tagging_snapshots(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS: CreateImage's TagSpecifications of type snapshot tag the snapshots the image is
    made of. moto raises NotImplementedError for them; here they are applied after the fact."""

    def create(
        self: Any,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        snapshot_tags = [
            tag
            for spec in tag_specifications
            if spec.get("ResourceType") == "snapshot"
            for tag in spec["Tags"]
        ]
        others = [spec for spec in tag_specifications if spec.get("ResourceType") != "snapshot"]
        image = original(self, instance_id, name, description, others)
        for tag in snapshot_tags:
            image.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return image

    return create


def _stop_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS: StopExecution ends a running execution ABORTED at once; no Retry or Catch runs
    after it. moto lets a branch of a Parallel that was mid-retry fail the execution
    afterwards, which ends it FAILED; here a requested stop always ends ABORTED.
    AWS: a stop right after the start works too; moto's worker thread has no environment to
    stop until it runs, so the stop waits for it (a few milliseconds)."""

    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        self.stop_requested = True
        deadline = time.monotonic() + 5
        while self.exec_worker and self.exec_worker.env is None and time.monotonic() < deadline:
            time.sleep(0.005)
        original(self, stop_date=stop_date, error=error, cause=cause)

    return stop


def _branch_ends_when_stopped(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS: StopExecution ends every branch of a running Parallel. moto's branch worker that
    starts just after the stop fails to set its first state on the stopped program
    (RuntimeError in Program.eval) and dies without telling the Parallel, which then waits for
    it for ever: the execution stays RUNNING. A branch of a stopped program ends, and says so."""

    def routine(self: Any) -> None:
        try:
            original(self)
        except RuntimeError:
            if self.env.is_running():
                raise
            self._branch_worker_comm.on_terminated(env=self.env)

    return routine


def _execution_name_or_uuid(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS (StartExecution, `name`): "If you don't provide a name for the execution, Step
    Functions automatically generates a universally unique identifier (UUID) as the execution
    name." moto names it None (`...:execution:ResetAccess:None`), so every unnamed start would
    share one name, and the run's resources would be named "None"."""

    def start(
        self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return start


# AWS: an execution's history holds at most 25,000 events; when event 25,000 would not be
# ExecutionSucceeded, the execution fails there, with no Catch run (Step Functions developer
# guide, "Avoid reaching the history quota"; the cause is the text AWS gives). moto has no limit.
HISTORY_EVENT_QUOTA = 25_000
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events (25000)."


def _execution(execution_arn: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    # arn:aws:states:region:account:execution:machine:name
    _, _, _, region, account, *_ = execution_arn.split(":")
    backend = stepfunctions_parser_backends[account][region]
    return next(e for e in backend._get_executions() if e.execution_arn == execution_arn)


# Notified whenever an execution ends: the engine waits on it rather than polling the API.
EXECUTION_ENDED = threading.Condition()


def execution_running(execution_arn: str) -> bool:
    """What DescribeExecution's status says (RUNNING, or not yet started), read from moto's
    execution: the engine's wait makes no API call for it."""
    return _execution(execution_arn).exec_status in (None, "RUNNING")


def enforce_history_quota(execution_arn: str) -> bool:
    """Fail a running execution whose history reached the quota; True if it did. The engine
    calls this while it waits, so a run that would fail in AWS on its history fails here too."""
    execution = _execution(execution_arn)
    worker = execution.exec_worker
    env = worker.env if worker else None
    if env is None or getattr(execution, "history_limit_reached", False):
        return False
    if len(env.event_manager._history_event_list) < HISTORY_EVENT_QUOTA - 1:
        return False
    execution.history_limit_reached = True
    execution.stop(
        stop_date=datetime.datetime.now(tz=datetime.UTC),
        error=HISTORY_LIMIT_ERROR,
        cause=HISTORY_LIMIT_CAUSE,
    )
    return True


def _reflect_execution_status(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def reflect(self: Any) -> None:
        original(self)
        from moto.stepfunctions.parser.api import ExecutionStatus

        if getattr(self.execution, "history_limit_reached", False):
            self.execution.exec_status = ExecutionStatus.FAILED
            self.execution.error = HISTORY_LIMIT_ERROR
            self.execution.cause = HISTORY_LIMIT_CAUSE
        elif getattr(self.execution, "stop_requested", False):
            self.execution.exec_status = ExecutionStatus.ABORTED
        with EXECUTION_ENDED:
            EXECUTION_ENDED.notify_all()

    return reflect


def _serialized_requests(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS: a request never fails because another request changes the account at the same
    time. moto's backends are plain dicts: a Parallel branch creating a resource while another
    branch's Describe iterates them can fail that Describe with "dictionary changed size during
    iteration". Here each request runs alone, as one atomic step. A Lambda Invoke is the
    exception: the function runs in this process and makes requests of its own."""

    def handle(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if _LAMBDA_INVOKE.search(request.url or ""):
            return original(self, event_name, request, **kwargs)
        with REQUESTS:
            return original(self, event_name, request, **kwargs)

    return handle


# One request at a time, in-process or through `python -m local serve` (local/serve.py).
REQUESTS = threading.RLock()
_LAMBDA_INVOKE = re.compile(r"^https://lambda\.[^/]+/[^/]+/functions/[^/]+/invocations")


# Parse trees by definition text, for the process: a test worker runs hundreds of worlds of the
# same two definitions. Bounded: a generated definition per test must not grow it for ever.
PARSE_TREES_KEPT = 32
_parse_trees: OrderedDict[str, Any] = OrderedDict()
_parse_lock = threading.Lock()


def _parse_once() -> Callable[[str], tuple[Any, Any]]:
    """Not a correction, a saving: moto parses the whole definition with ANTLR (about 0.15 s
    for ours) at CreateStateMachine (its validation) and at every execution start. The parse
    tree is kept per definition text, for the process (moto's Preprocessor only reads it); every
    caller still gets its own evaluation components, built from it as moto builds them. Only a
    definition that parsed is kept, so a bad one is refused each time as before."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> tuple[Any, Any]:
        with _parse_lock:
            tree = _parse_trees.get(definition)
            if tree is not None:
                _parse_trees.move_to_end(definition)
        if tree is None:
            program, tree = original(definition)
            with _parse_lock:
                _parse_trees[definition] = tree
                while len(_parse_trees) > PARSE_TREES_KEPT:
                    _parse_trees.popitem(last=False)
            return program, tree
        return Preprocessor().visit(tree), tree

    return parse


def _validated_once(original: Callable[[str], None]) -> Callable[[str], None]:
    """Not a correction, a saving: CreateStateMachine's validation parses the definition and
    builds its components only to drop them. A definition whose parse tree is kept was parsed
    and built whole before (only those are kept), so it passes again; any other is checked."""

    def validate(definition: str) -> None:
        with _parse_lock:
            if definition in _parse_trees:
                return
        original(definition)

    return validate


def _client_per_world(original: Callable[..., Any]) -> Callable[..., Any]:
    """Not a correction, a saving: moto's interpreter makes a new boto3 client for every Lambda
    Task it runs (a client class built anew each time). The client depends only on the Region
    and service (moto gives it fixed credentials whatever the state's), so one per world is
    made; a state with its own Credentials still gets a client of its own."""
    made: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if state_credentials is not None:
            return original(region=region, service=service, state_credentials=state_credentials)
        with lock:
            if (region, service) not in made:
                made[(region, service)] = original(region=region, service=service)
            return made[(region, service)]

    return client_for


# The architectures a world launches from (stack_twin.linux_image: its instances, and the
# helpers' Ubuntu parameters for amd64 and arm64).
WORLD_ARCHITECTURES = ("x86_64", "arm64")


@functools.cache
def _world_image_specs(region: str) -> tuple[dict[str, Any], ...]:
    """The first Linux image of each architecture in the order moto loads its public images
    (amis.json, then the Region's latest and ECS-optimized ones): those linux_image finds."""
    from moto.ec2.models.amis import AMIS
    from moto.utilities.utils import load_resource

    sources = [AMIS]
    for path in ("latest_amis", "ecs/optimized_amis"):
        with contextlib.suppress(FileNotFoundError):
            sources.append(load_resource(f"ec2/resources/{path}/{region}.json"))
    chosen: dict[str, dict[str, Any]] = {}
    for ami in (ami for source in sources for ami in source):
        architecture = ami.get("architecture")
        if not ami.get("platform") and architecture in WORLD_ARCHITECTURES:
            chosen.setdefault(architecture, dict(ami))
    return tuple(chosen.values())


@contextlib.contextmanager
def world_images() -> Iterator[None]:
    """Not a correction, a saving: moto gives every EC2 backend it makes (each world's, and
    again each one it resets at the mock's end) its 1,301 public images, each with a snapshot.
    A world launches only from the images linux_image picks, so every backend gets those, the
    same images with the same IDs; MOTO_AMIS_PATH or MOTO_EC2_LOAD_DEFAULT_AMIS still rule."""
    from moto import settings
    from moto.core.parse import default_timestamp_parser
    from moto.ec2.models.amis import Ami, AmiBackend

    original = AmiBackend._load_amis

    def load(self: Any) -> None:
        if "MOTO_AMIS_PATH" in os.environ or not settings.ec2_load_default_amis():
            original(self)
            return
        for spec in _world_image_specs(self.region_name):
            ami = {**spec, "owner_alias": "amazon"}
            if isinstance(ami.get("creation_date"), str):
                ami["creation_date"] = default_timestamp_parser(ami["creation_date"])
            self.amis[ami["ami_id"]] = Ami(self, **ami)

    with mock.patch.object(AmiBackend, "_load_amis", load):
        yield


@contextlib.contextmanager
def corrections(
    world: SsmWorld, invoke: Callable[[Any, Any], tuple[str, bool, str]]
) -> Iterator[None]:
    """All corrections at once, for the lifetime of one local AWS."""
    from moto.awslambda.models import LambdaFunction
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.subnets import Subnet
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ssm.models import Command, SimpleSystemManagerBackend
    from moto.ssm.responses import SimpleSystemManagerResponse
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import (
        BranchWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution import (
        BaseExecutionWorkerCommunication,
        Execution,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for name in _JSON_PATH_USERS:
        importlib.import_module(name)
    with contextlib.ExitStack() as stack:
        # Also here for the EC2 backends made inside (the engine enters it before moto's mock,
        # so that the mock's reset at its end makes none of the 1,301 again).
        stack.enter_context(world_images())
        # Two method caches of moto's (functools caches on the class) hold every subnet and
        # account backend ever made, and so each world's EC2 backend (its 1,301 AMIs...) after
        # the world ends: a test worker grew to 670,000 objects, its final collections
        # outlasted xdist's shutdown, and its SIGINT showed as a KeyboardInterrupt in
        # hypothesis's gc callback. Emptied when the world ends.
        stack.callback(Subnet._base_avail_ip_iterator.cache_clear)
        stack.callback(AccountSpecificBackend._generate_regions.cache_clear)
        for name, module in list(sys.modules.items()):
            if (
                name.startswith("moto.stepfunctions")
                and getattr(module, "extract_json", None) is _MOTO_EXTRACT_JSON
            ):
                stack.enter_context(mock.patch.object(module, "extract_json", aws_extract_json))
        # Wait states take no time locally. Retry pauses are kept, scaled down: a poll that
        # waits on another branch's work (the target waiting for its helper) must not use up
        # its MaxAttempts before that work could even be done.
        stack.enter_context(
            mock.patch.object(
                wait_function.WaitFunction, "_wait_interval", lambda self, env, wait_seconds: None
            )
        )
        stack.enter_context(
            mock.patch.object(
                retrier_decl,
                "time",
                mock.Mock(sleep=lambda seconds: time.sleep(seconds * RETRY_TIME_SCALE)),
            )
        )
        stack.enter_context(mock.patch.object(LambdaFunction, "_invoke_lambda", invoke))
        stack.enter_context(ebs_default_key.served())
        stack.enter_context(eventbridge.corrections())
        stack.enter_context(replace_root.served(world.ebs))
        stack.enter_context(ebs_attachments.enforced())
        stack.enter_context(ec2_tags.enforced())
        stack.enter_context(
            mock.patch.object(
                BotocoreStubber, "__call__", _serialized_requests(BotocoreStubber.__call__)
            )
        )
        stack.enter_context(
            mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse_once()))
        )
        stack.enter_context(
            mock.patch.object(
                StepFunctionsParserBackend,
                "_validate_definition",
                staticmethod(_validated_once(StepFunctionsParserBackend._validate_definition)),
            )
        )
        stack.enter_context(
            mock.patch.object(
                lambda_eval_utils,
                "boto_client_for",
                _client_per_world(lambda_eval_utils.boto_client_for),  # type: ignore[attr-defined]
            )
        )
        stack.enter_context(mock.patch.object(Execution, "stop", _stop_execution(Execution.stop)))
        stack.enter_context(
            mock.patch.object(
                BranchWorker,
                "_thread_routine",
                _branch_ends_when_stopped(BranchWorker._thread_routine),
            )
        )
        stack.enter_context(
            mock.patch.object(
                StepFunctionsParserBackend,
                "start_execution",
                _execution_name_or_uuid(StepFunctionsParserBackend.start_execution),
            )
        )
        stack.enter_context(
            mock.patch.object(
                BaseExecutionWorkerCommunication,
                "_reflect_execution_status",
                _reflect_execution_status(
                    BaseExecutionWorkerCommunication._reflect_execution_status
                ),
            )
        )
        stack.enter_context(
            mock.patch.object(
                InstanceResponse,
                "_validate_block_device_mapping",
                staticmethod(
                    _validate_block_device_mapping(InstanceResponse._validate_block_device_mapping)
                ),
            )
        )
        stack.enter_context(
            mock.patch.object(
                AmiBackend, "create_image", create_image_tagging_snapshots(AmiBackend.create_image)
            )
        )
        stack.enter_context(
            mock.patch.object(
                SimpleSystemManagerResponse,
                "describe_instance_information",
                _describe_instance_information(world),
                create=True,
            )
        )
        stack.enter_context(
            mock.patch.object(
                SimpleSystemManagerResponse,
                "send_command",
                send_command_response(SimpleSystemManagerResponse.send_command),
            )
        )
        stack.enter_context(
            mock.patch.object(
                SimpleSystemManagerBackend,
                "send_command",
                _send_command(world, SimpleSystemManagerBackend.send_command),
            )
        )
        stack.enter_context(
            mock.patch.object(
                Command, "get_invocation", _get_invocation(world, Command.get_invocation)
            )
        )
        yield
