"""The stack's twin in moto: what stacks/ deploys, created in the local AWS from the same sources.

The key, lock table, notification topic, roles, helper profile, rescue document (a stand-in
declaring the same parameters), the public Ubuntu parameters, the functions' environment, one
function per phase (statemachine/phases.py), and the state machine from the same definition text
(statemachine/definition.py) with the same substitutions. The phase handlers themselves run
in-process (local/engine.py invokes them).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

from lambdas.names import FLEET_STATE_MACHINE_NAME, LOCK_KEY, STACK_NAME, ubuntu_ami_parameter
from local import emulator, sessions
from local.emulator import ACCOUNT, REGION, SsmWorld
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


def create_stack(ssm_world: SsmWorld, logs: io.StringIO) -> DeployedStack:
    """Create the stack in the current local AWS; the handlers' logs go to `logs`."""
    kms = sessions.client("kms")
    kms_key_arn = kms.create_key(Description="ResetAccess")["KeyMetadata"]["Arn"]
    sessions.client("dynamodb").create_table(
        TableName=LOCK_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
    )
    # Encrypted with the stack's key, as stacks/operations.py makes it.
    topic_arn = sessions.client("sns").create_topic(
        Name=NOTIFY_TOPIC, Attributes={"KmsMasterKeyId": kms_key_arn}
    )["TopicArn"]
    iam = sessions.client("iam")
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
    helper_profile_arn = profile["InstanceProfile"]["Arn"]
    ssm_world.helper_profile_arn = helper_profile_arn

    ssm = sessions.client("ssm")
    stand_in = document_stand_in()
    ssm.create_document(
        Name=RESCUE_DOCUMENT,
        DocumentType="Command",
        Content=json.dumps(stand_in),
        DocumentFormat="JSON",
    )
    ssm_world.document_parameters = set(stand_in["parameters"])
    for arch, wanted in (("amd64", "x86_64"), ("arm64", "arm64")):
        put_public_parameter(ubuntu_ami_parameter(arch), linux_image(wanted))

    os.environ.update(
        {
            "LOCK_TABLE_NAME": LOCK_TABLE,
            "KMS_KEY_ARN": kms_key_arn,
            "RESCUE_DOCUMENT_NAME": RESCUE_DOCUMENT,
            "HELPER_INSTANCE_PROFILE_ARN": helper_profile_arn,
            "HELPER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-Helper",
            "NOTIFY_TOPIC_ARN": topic_arn,
        }
    )
    handlers = load_handlers(logs)

    asl = render()
    lambdas = sessions.client("lambda")
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
    definition = substitute(asl, substitutions)
    sfn = sessions.client("stepfunctions")
    state_machine_arn = sfn.create_state_machine(
        name=STACK,
        definition=definition,
        roleArn=role_arn,
        type="STANDARD",
    )["stateMachineArn"]
    os.environ["STATE_MACHINE_ARN"] = state_machine_arn
    fleet_substitutions = {"LockTableName": LOCK_TABLE}
    for phase in FLEET_PHASES:
        fleet_substitutions[phase.placeholder] = lambdas.create_function(
            FunctionName=f"{STACK}-{phase.name}",
            Runtime="python3.13",
            Role=role_arn,
            Handler=f"{phase.module}.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    fleet_arn = sfn.create_state_machine(
        name=FLEET_STATE_MACHINE_NAME,
        definition=substitute(fleet.render(), fleet_substitutions),
        roleArn=role_arn,
        type="STANDARD",
    )["stateMachineArn"]
    return DeployedStack(
        kms_key_arn, helper_profile_arn, state_machine_arn, fleet_arn, topic_arn, handlers
    )


def load_handlers(logs: io.StringIO) -> dict[str, Any]:
    """Import (or re-import, so cold-start config sees this world) every phase handler."""
    from lambdas import runtime
    from lambdas.logic import telemetry

    # A new session per world, as a new container has; botocore's models stay loaded.
    runtime.reset_clients(sessions.session())
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


def put_public_parameter(name: str, value: str) -> None:
    """AWS publishes these; callers cannot create /aws/ names, so the world seeds them."""
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    ssm_backends[ACCOUNT][REGION]._parameters[name].append(
        Parameter(  # type: ignore[abstract]
            account_id=ACCOUNT,
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
