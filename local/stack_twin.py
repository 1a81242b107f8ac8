"""The stack's twin in moto: what stacks/ deploys, created in the local AWS from the same sources.

The key, lock table, notification topic, roles, helper profile, rescue document (a stand-in
declaring the same parameters), the public Ubuntu parameters, the functions' environment, one
function per phase (statemachine/phases.py), and the state machine from the same definition text
(statemachine/definition.py) with the same substitutions. The phase handlers themselves run
in-process (local/engine.py invokes them).

A member deployment (stacks/member.py) is the same without the fleet, plus the role the fleet
account assumes there: the engine makes one in each other account and Region a scenario uses,
each with its own copy of the handler modules (a location's own cold start).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lambdas.names import (
    FLEET_STATE_MACHINE_NAME,
    LOCK_KEY,
    STACK_NAME,
    member_role_name,
    ubuntu_ami_parameter,
)
from local import emulator, locations, sessions
from local.emulator import SsmWorld
from local.locations import HOME, Location
from statemachine import fleet
from statemachine.definition import render, substitute
from statemachine.phases import EVENT_FUNCTIONS, FLEET_PHASES, PHASES

STACK = STACK_NAME
LOCK_TABLE = f"{STACK}-Locks"
RESCUE_DOCUMENT = f"{STACK}-Rescue"
NOTIFY_TOPIC = f"{STACK}-Notifications"


@dataclass
class DeployedStack:
    """What the engine needs to know of the twin once it is created."""

    kms_key_arn: str
    helper_profile_arn: str
    state_machine_arn: str
    fleet_state_machine_arn: str
    topic_arn: str
    # Function name -> its handler module, imported for this world.
    handlers: dict[str, Any]
    # The functions' environment (Lambda sets it; the engine layers it per invocation).
    environment: dict[str, str] = field(default_factory=dict)
    location: Location = HOME


@dataclass
class Deployed:
    """One location's ResetAccess, before its functions' modules are loaded."""

    kms_key_arn: str
    helper_profile_arn: str
    state_machine_arn: str
    topic_arn: str
    role_arn: str
    environment: dict[str, str]
    code: bytes


def create_stack(ssm_world: SsmWorld, logs: io.StringIO) -> DeployedStack:
    """Create the stack (the full deployment, with the fleet) in the engine's home location;
    the handlers' logs go to `logs`."""
    deployed = _reset_access(HOME, ssm_world)
    os.environ.update(deployed.environment)
    handlers = load_handlers(logs)
    lambdas = sessions.client("lambda")
    sfn = sessions.client("stepfunctions")
    fleet_substitutions = {"LockTableName": LOCK_TABLE}
    for phase in FLEET_PHASES:
        fleet_substitutions[phase.placeholder] = lambdas.create_function(
            FunctionName=f"{STACK}-{phase.name}",
            Runtime="python3.13",
            Role=deployed.role_arn,
            Handler=f"{phase.module}.handler",
            Code={"ZipFile": deployed.code},
        )["FunctionArn"]
    fleet_arn = sfn.create_state_machine(
        name=FLEET_STATE_MACHINE_NAME,
        definition=substitute(fleet.render(), fleet_substitutions),
        roleArn=deployed.role_arn,
        type="STANDARD",
    )["stateMachineArn"]
    return DeployedStack(
        deployed.kms_key_arn,
        deployed.helper_profile_arn,
        deployed.state_machine_arn,
        fleet_arn,
        deployed.topic_arn,
        handlers,
        deployed.environment,
    )


def create_member(location: Location, fleet_account: str, ssm_world: SsmWorld) -> DeployedStack:
    """A member deployment (stacks/member.py) in another account or Region: ResetAccess under
    its fixed name, its functions, and the role the fleet account assumes there."""
    deployed = _reset_access(location, ssm_world)
    iam = locations.client("iam", location)
    iam.create_role(
        RoleName=member_role_name(location.region),
        AssumeRolePolicyDocument=json.dumps(member_trust(fleet_account)),
    )
    with locations.at(location, deployed.environment):
        handlers = {
            f"{STACK}-{p.name}": _fresh_module(p.module) for p in (*PHASES, *EVENT_FUNCTIONS)
        }
    return DeployedStack(
        deployed.kms_key_arn,
        deployed.helper_profile_arn,
        deployed.state_machine_arn,
        "",
        deployed.topic_arn,
        handlers,
        deployed.environment,
        location,
    )


# Step Functions' managed rule for `.sync` tasks (stacks/member.py SYNC_RULE).
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"


def member_trust(fleet_account: str) -> dict[str, Any]:
    """The member role's trust policy as stacks/member.py synthesizes it (tests/stack checks
    the template): the fleet account, only its ResetAccess roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{fleet_account}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{fleet_account}:role/{STACK}-*"}
                },
            }
        ],
    }


def member_policy(location: Location) -> list[dict[str, Any]]:
    """The member role's identity policy as stacks/member.py synthesizes it (tests/stack checks
    the template), for the engine's IAM."""
    account, region = location
    executions = f"arn:aws:states:{region}:{account}:execution:{STACK}:*"
    rule = f"arn:aws:events:{region}:{account}:rule/{SYNC_RULE}"
    return [
        {"Effect": "Allow", "Action": actions, "Resource": resources}
        for actions, resources in (
            (["ec2:DescribeInstances"], ["*"]),
            (
                ["states:StartExecution"],
                [f"arn:aws:states:{region}:{account}:stateMachine:{STACK}"],
            ),
            (["states:DescribeExecution", "states:StopExecution"], [executions]),
            (["events:PutTargets", "events:PutRule", "events:DescribeRule"], [rule]),
        )
    ]


def _reset_access(location: Location, ssm_world: SsmWorld) -> Deployed:
    """ResetAccess in one location: key, table, topic, roles (once per account), document,
    public parameters, functions and the state machine; the functions' environment."""
    account = location.account
    kms = locations.client("kms", location)
    kms_key_arn = kms.create_key(Description="ResetAccess")["KeyMetadata"]["Arn"]
    locations.client("dynamodb", location).create_table(
        TableName=LOCK_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
    )
    # Encrypted with the stack's key, as stacks/operations.py makes it.
    topic_arn = locations.client("sns", location).create_topic(
        Name=NOTIFY_TOPIC, Attributes={"KmsMasterKeyId": kms_key_arn}
    )["TopicArn"]
    role_arn, helper_profile_arn = _roles(location)
    ssm_world.helper_profile_arns.add(helper_profile_arn)
    if location == HOME:
        ssm_world.helper_profile_arn = helper_profile_arn

    stand_in = document_stand_in()
    locations.client("ssm", location).create_document(
        Name=RESCUE_DOCUMENT,
        DocumentType="Command",
        Content=json.dumps(stand_in),
        DocumentFormat="JSON",
    )
    ssm_world.document_parameters = set(stand_in["parameters"])
    with locations.at(location):
        for arch, wanted in (("amd64", "x86_64"), ("arm64", "arm64")):
            put_public_parameter(ubuntu_ami_parameter(arch), linux_image(wanted), location)

    environment = {
        "LOCK_TABLE_NAME": LOCK_TABLE,
        "KMS_KEY_ARN": kms_key_arn,
        "RESCUE_DOCUMENT_NAME": RESCUE_DOCUMENT,
        "HELPER_INSTANCE_PROFILE_ARN": helper_profile_arn,
        "HELPER_ROLE_ARN": f"arn:aws:iam::{account}:role/{STACK}-Helper",
        "NOTIFY_TOPIC_ARN": topic_arn,
        **_credentials(location, role_arn),
    }
    lambdas = locations.client("lambda", location)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README", "handlers run in-process by local.engine")
    substitutions = {}
    for phase in PHASES:
        arn = lambdas.create_function(
            FunctionName=f"{STACK}-{phase.name}",
            Runtime="python3.13",
            Role=role_arn,
            Handler=f"{phase.module}.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
        substitutions[phase.placeholder] = arn
    state_machine_arn = locations.client("stepfunctions", location).create_state_machine(
        name=STACK,
        definition=substitute(render(), substitutions),
        roleArn=role_arn,
        type="STANDARD",
    )["stateMachineArn"]
    environment["STATE_MACHINE_ARN"] = state_machine_arn
    return Deployed(
        kms_key_arn,
        helper_profile_arn,
        state_machine_arn,
        topic_arn,
        role_arn,
        environment,
        code.getvalue(),
    )


def _roles(location: Location) -> tuple[str, str]:
    """The functions' role and the helper's profile, once per account (IAM is global)."""
    iam = locations.client("iam", location)
    try:
        role_arn = iam.get_role(RoleName=f"{STACK}-Role")["Role"]["Arn"]
        profile = iam.get_instance_profile(InstanceProfileName=f"{STACK}-Helper")
        return str(role_arn), str(profile["InstanceProfile"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        pass
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Service": [
                            "lambda.amazonaws.com",
                            "states.amazonaws.com",
                            "ec2.amazonaws.com",
                        ]
                    },
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    role_arn = iam.create_role(RoleName=f"{STACK}-Role", AssumeRolePolicyDocument=trust)["Role"][
        "Arn"
    ]
    iam.create_role(RoleName=f"{STACK}-Helper", AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName=f"{STACK}-Helper")
    iam.add_role_to_instance_profile(
        InstanceProfileName=f"{STACK}-Helper", RoleName=f"{STACK}-Helper"
    )
    return str(role_arn), str(profile["InstanceProfile"]["Arn"])


def _credentials(location: Location, role_arn: str) -> dict[str, str]:
    """What Lambda puts in a function's environment: its Region, and its role's credentials
    (in the engine's home account the engine's own, so single-location runs stay as they were)."""
    region = {"AWS_REGION": location.region, "AWS_DEFAULT_REGION": location.region}
    if location.account == HOME.account:
        return region
    credentials = locations.client("sts", location).assume_role(
        RoleArn=role_arn, RoleSessionName=f"{STACK}-functions"
    )["Credentials"]
    return {
        **region,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def _fresh_module(name: str) -> ModuleType:
    """A handler module executed afresh for one location (its own cold start: the module-level
    config reads that location's environment), leaving sys.modules' copy as it is."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handlers(logs: io.StringIO) -> dict[str, Any]:
    """Import (or re-import, so cold-start config sees this world) every phase handler."""
    from lambdas import runtime
    from lambdas.logic import telemetry

    # A new session per container, as a new container has; botocore's models stay loaded.
    runtime.reset_clients(sessions.session)
    runtime.logger.registered_handler.stream = logs  # type: ignore[attr-defined]
    # The endings' metrics (EMF lines, stdout in AWS) go to the same log.
    telemetry.stream = logs
    handlers: dict[str, Any] = {}
    for phase in (*PHASES, *FLEET_PHASES):
        module = importlib.import_module(phase.module)
        handlers[f"{STACK}-{phase.name}"] = importlib.reload(module)
    # Functions no Task state invokes: EventBridge starts them in AWS, the engine does here.
    for event_function in EVENT_FUNCTIONS:
        module = importlib.reload(importlib.import_module(event_function.module))
        handlers[f"{STACK}-{event_function.name}"] = module
    return handlers


def linux_image(architecture: str) -> str:
    """One of moto's own Linux images (read from the backend: DescribeImages of all of moto's
    public images costs a second)."""
    backend = emulator.ec2_backend()
    return str(
        next(
            ami.id
            for ami in backend.amis.values()
            if not ami.platform and ami.architecture == architecture
        )
    )


def put_public_parameter(name: str, value: str, location: Location = HOME) -> None:
    """AWS publishes these; callers cannot create /aws/ names, so the world seeds them."""
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    ssm_backends[location.account][location.region]._parameters[name].append(
        Parameter(  # type: ignore[abstract]
            account_id=location.account,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=utcnow(),
            version=1,
            data_type="aws:ec2:image",
        )
    )


def document_stand_in() -> dict[str, Any]:
    """The rescue document's interface (the stack's document declares the same parameters:
    tests/stack checks it); its script is replaced by the emulator running the agent itself
    (see local.emulator's SendCommand correction)."""
    return {
        "schemaVersion": "2.2",
        "description": "ResetAccess rescue agent (local stand-in)",
        "parameters": {
            "Platform": {"type": "String"},
            "Target": {"type": "String"},
            "PublicKey": {"type": "String", "default": ""},
        },
        "mainSteps": [
            {"action": "aws:runShellScript", "name": "rescue", "inputs": {"runCommand": ["true"]}}
        ],
    }
