"""The member deployment (stacks/member.py): ResetAccess with a fixed name and the role the
fleet's account assumes; no fleet of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.names import STACK_NAME

FLEET_ACCOUNT = "111122223333"


@pytest.fixture(scope="module")
def member_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from stacks.app import build_app

    outdir = tmp_path_factory.mktemp("member")
    app, _ = build_app(
        outdir=str(outdir),
        context={
            "aws:cdk:disable-asset-staging": True,
            "deployment": "member",
            "fleetAccount": FLEET_ACCOUNT,
        },
    )
    app.synth()
    template: dict[str, Any] = json.loads(Path(outdir, f"{STACK_NAME}.template.json").read_text())
    return template


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_a_member_runs_resetaccess_by_its_fixed_name_and_no_fleet(
    member_template: dict[str, Any],
) -> None:
    machines = list(of_type(member_template, "AWS::StepFunctions::StateMachine").values())
    assert [m["Properties"].get("StateMachineName") for m in machines] == [STACK_NAME]
    assert "MemberRoleArn" in member_template["Outputs"]
    assert "FleetStateMachineArn" not in member_template["Outputs"]


def test_the_member_role_trusts_only_the_fleet_accounts_resetaccess_roles(
    member_template: dict[str, Any],
) -> None:
    ((role_id, role),) = [
        (k, r)
        for k, r in of_type(member_template, "AWS::IAM::Role").items()
        if k.startswith("MemberRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert FLEET_ACCOUNT in json.dumps(trust["Principal"])
    assert "role/ResetAccess-*" in json.dumps(trust["Condition"]["ArnLike"])
    statements = [
        s
        for p in of_type(member_template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = sorted(
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    assert actions == sorted(
        [
            "ec2:DescribeInstances",
            "events:DescribeRule",
            "events:PutRule",
            "events:PutTargets",
            "states:DescribeExecution",
            "states:StartExecution",
            "states:StopExecution",
        ]
    )


def test_a_member_deployment_without_the_fleet_account_is_refused() -> None:
    from stacks.app import build_app

    with pytest.raises(ValueError, match="fleetAccount"):
        build_app(context={"aws:cdk:disable-asset-staging": True, "deployment": "member"})


def _resolved(value: Any, machines: set[str], where: tuple[str, str]) -> Any:
    """The template's intrinsics as CloudFormation resolves them in one account and Region."""
    account, region = where
    machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:{STACK_NAME}"
    pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account}
    if isinstance(value, list):
        return [_resolved(v, machines, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return pseudo.get(value["Ref"]) or (machine_arn if value["Ref"] in machines else value)
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in machines:
        return STACK_NAME
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolved(p, machines, where)) for p in parts)
    return {k: _resolved(v, machines, where) for k, v in value.items()}


def _as_set(value: Any) -> frozenset[str]:
    return frozenset(value if isinstance(value, list) else [value])


def test_the_engines_member_twin_has_the_member_roles_trust_and_policy(
    member_template: dict[str, Any],
) -> None:
    """local/stack_twin.py's member role (the engine enforces its trust and policy) is the one
    this template deploys."""
    from local.locations import Location
    from local.stack_twin import member_policy, member_trust

    where = Location("444455556666", "eu-west-1")
    machines = set(of_type(member_template, "AWS::StepFunctions::StateMachine"))
    ((role_id, role),) = [
        (k, r)
        for k, r in of_type(member_template, "AWS::IAM::Role").items()
        if k.startswith("MemberRole")
    ]
    trust = _resolved(role["Properties"]["AssumeRolePolicyDocument"], machines, where)
    assert trust == member_trust(FLEET_ACCOUNT)
    synthesized = {
        (_as_set(s["Action"]), _as_set(s["Resource"]))
        for p in of_type(member_template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in _resolved(p["Properties"]["PolicyDocument"], machines, where)["Statement"]
    }
    twin = {(_as_set(s["Action"]), _as_set(s["Resource"])) for s in member_policy(where)}
    assert twin == synthesized
