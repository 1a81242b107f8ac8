"""What a test worker's later worlds no longer pay again (python -m local.run_cost measures it):
botocore's service models are decoded once per process, and moto's ANTLR parse of a definition
is done once per process, while every world and every execution still gets its own session,
clients and evaluation components."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.loaders import JSONFileLoader
from moto import mock_aws

from lambdas import runtime
from local import emulator
from local.engine import Engine
from local.scenario import Scenario

SCENARIO = Path(__file__).resolve().parents[2] / "local" / "scenarios" / "lost-key-linux.json"
# The services the handlers call (lambdas/runtime.py's overloads).
HANDLER_SERVICES = ("ec2", "ssm", "dynamodb", "kms", "stepfunctions", "sts", "sns")


def _world_with_handler_clients() -> dict[str, Any]:
    """A fresh world (stack twin and instances) and the handlers' clients made in it."""
    engine = Engine(Scenario.load(SCENARIO))
    with engine.local_aws():
        return {service: runtime.client(service) for service in HANDLER_SERVICES}  # type: ignore[call-overload]


def test_a_second_world_decodes_no_service_model_again() -> None:
    first = _world_with_handler_clients()
    original = JSONFileLoader.load_file
    read: list[str] = []

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        read.append(file_path)
        return original(self, file_path)

    with mock.patch.object(JSONFileLoader, "load_file", load_file):
        second = _world_with_handler_clients()
    assert [path for path in read if "service-2" in path] == []
    # Still a new session and new clients per world, as a new Lambda container has.
    assert all(second[s] is not first[s] for s in HANDLER_SERVICES)


@pytest.fixture
def asl_parses() -> Iterator[list[str]]:
    """Each ANTLR parse of a whole definition ("parse") and each time its evaluation
    components are built from a tree ("build"), in order."""
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = ASLParser.state_machine
    original_build = Preprocessor.visitState_machine
    parses: list[str] = []

    def state_machine(self: Any) -> Any:
        parses.append("parse")
        return original(self)  # type: ignore[no-untyped-call]

    def build(self: Any, ctx: Any) -> Any:
        parses.append("build")
        return original_build(self, ctx)

    with (
        mock.patch.object(ASLParser, "state_machine", state_machine),
        mock.patch.object(Preprocessor, "visitState_machine", build),
    ):
        yield parses


def _corrected_world() -> Any:
    def no_lambda(function: object, event: object = None) -> tuple[str, bool, str]:
        return "{}", False, ""

    world = emulator.SsmWorld(document_name="ResetAccess-Rescue")
    stack = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
    stack.start()
    corrections = emulator.corrections(world, no_lambda)
    corrections.__enter__()
    return stack, corrections


def _create_machine(definition: str) -> None:
    boto3.client("stepfunctions", region_name=emulator.REGION).create_state_machine(
        name=f"m-{uuid.uuid4().hex[:8]}",
        definition=definition,
        roleArn=f"arn:aws:iam::{emulator.ACCOUNT}:role/r",
    )


def test_a_definition_is_parsed_once_per_process(asl_parses: list[str]) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    # A definition no other test has parsed in this process.
    definition = (
        '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "'
        + uuid.uuid4().hex
        + '", "End": true}}}'
    )
    programs = []
    for _ in range(2):  # two worlds
        aws, corrections = _corrected_world()
        try:
            _create_machine(definition)  # CreateStateMachine's validation parse
            programs.append(AmazonStateLanguageParser.parse(definition)[0])  # an execution's
        finally:
            corrections.__exit__(None, None, None)
            aws.stop()
    # World 1: CreateStateMachine parses and builds, the execution builds from the kept tree;
    # world 2: CreateStateMachine knows the definition, the execution builds again.
    assert asl_parses == ["parse", "build", "build", "build"]
    # Each execution still evaluates components of its own.
    assert programs[0] is not programs[1]
    assert type(programs[0]) is type(programs[1])


def test_a_bad_definition_is_refused_every_time(asl_parses: list[str]) -> None:
    bad = '{"StartAt": "A", "States": {"A": {"Type": "Pass" "End": true}}}'
    aws, corrections = _corrected_world()
    try:
        for _ in range(2):
            with pytest.raises(ClientError) as refused:
                _create_machine(bad)
            assert "ASLParserException" in str(refused.value)
    finally:
        corrections.__exit__(None, None, None)
        aws.stop()
    assert asl_parses.count("parse") == 2


def test_the_kept_parse_trees_are_bounded() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    aws, corrections = _corrected_world()
    try:
        for n in range(emulator.PARSE_TREES_KEPT + 3):
            AmazonStateLanguageParser.parse(
                f'{{"StartAt": "A", "States": {{"A": {{"Type": "Pass", "Result": {n}, '
                '"End": true}}}'
            )
    finally:
        corrections.__exit__(None, None, None)
        aws.stop()
    assert len(emulator._parse_trees) == emulator.PARSE_TREES_KEPT


def _launch_images() -> dict[str, str]:
    from local.stack_twin import linux_image

    return {architecture: linux_image(architecture) for architecture in ("x86_64", "arm64")}


def test_a_world_holds_only_the_images_it_launches_from_with_moto_s_ids() -> None:
    with emulator.world_images(), mock_aws():
        chosen = _launch_images()
        described = boto3.client("ec2", region_name=emulator.REGION).describe_images(
            ImageIds=list(chosen.values())
        )["Images"]
        held = set(emulator.ec2_backend().amis)
    with mock_aws():  # all of moto's public images
        assert _launch_images() == chosen
    assert held == set(chosen.values())
    assert {i["Architecture"] for i in described} == {"x86_64", "arm64"}
    assert all(i["OwnerId"] and i["RootDeviceName"] for i in described)
