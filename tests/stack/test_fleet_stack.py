"""The fleet state machine in the synthesized template (stacks/fleet.py)."""

from __future__ import annotations

import json
from typing import Any

from lambdas.names import FLEET_STATE_MACHINE_NAME
from statemachine import fleet
from tests.support.synth import Synth


def fleet_machine(synth: Synth) -> dict[str, Any]:
    (machine,) = [
        m
        for m in synth.of_type("AWS::StepFunctions::StateMachine").values()
        if m["Properties"].get("StateMachineName") == FLEET_STATE_MACHINE_NAME
    ]
    return machine


def test_the_fleet_machine_deploys_the_fleet_definition_byte_for_byte(synth: Synth) -> None:
    props = fleet_machine(synth)["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["DefinitionString"] == fleet.render()
    assert set(props["DefinitionSubstitutions"]) == {
        "ResolveTargetsFunctionArn",
        "StartElsewhereFunctionArn",
        "CheckElsewhereFunctionArn",
        "PublishFleetResultFunctionArn",
        "LockTableName",
    }
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_the_fleet_role_spells_out_its_actions_and_assumes_only_member_roles(synth: Synth) -> None:
    role_id = fleet_machine(synth)["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        action
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not [a for a in actions if "*" in a], actions
    assert {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"} <= actions
    (assume,) = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert "role/ResetAccess-FleetMember-*" in json.dumps(assume["Resource"])
    (counter,) = [s for s in statements if "dynamodb:UpdateItem" in s["Action"]]
    assert counter["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["fleet#*"]}
    }
