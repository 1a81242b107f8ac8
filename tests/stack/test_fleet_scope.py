"""Where a fleet may reach, known at synth (stacks/fleet_scope.py): -c memberAccounts,
organizationId and memberRegions narrow the member roles and other Regions' ResetAccess in every
policy that names them, the fleet's first phase gets the lists, and a wrong value stops synth
with one line. Without them the rules keep their reasoned wildcards (the default synth)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.names import MEMBER_ACCOUNTS_VARIABLE, MEMBER_REGIONS_VARIABLE
from stacks.context import ContextError
from tests.stack.test_fleet_stack import fleet_machine
from tests.support.synth import Synth, functions_by_handler, synth_once

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("eu-west-1", "us-west-2")
ORGANIZATION = "o-a1b2c3d4e5"
CONTEXT = {
    "memberAccounts": ",".join(ACCOUNTS),
    "organizationId": ORGANIZATION,
    "memberRegions": ",".join(REGIONS),
}
FLEET_FUNCTIONS = ("resolve_targets", "start_elsewhere", "check_elsewhere")


@pytest.fixture(scope="session")
def scoped(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Synth:
    """One synthesis with all three values, shared by the workers as the default one is."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    return synth_once(shared / "fleet-scope", CONTEXT)


def role_statements(synth: Synth, role_id: str) -> Iterator[dict[str, Any]]:
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            yield from policy["Properties"]["PolicyDocument"]["Statement"]


def function_statements(synth: Synth, handler: str) -> list[dict[str, Any]]:
    _, function = functions_by_handler(synth)[handler]
    return list(role_statements(synth, function["Properties"]["Role"]["Fn::GetAtt"][0]))


def rendered(resource: Any) -> list[str]:
    """Resources as text, with CloudFormation's pseudo parameters as `${AWS::...}`."""
    items = resource if isinstance(resource, list) else [resource]
    texts = []
    for item in items:
        parts = item["Fn::Join"][1] if isinstance(item, dict) and "Fn::Join" in item else [item]
        texts.append("".join(f"${{{p['Ref']}}}" if isinstance(p, dict) else str(p) for p in parts))
    return texts


def member_role_arns() -> set[str]:
    return {
        f"arn:${{AWS::Partition}}:iam::{account}:role/ResetAccess-FleetMember-{region}"
        for account in ACCOUNTS
        for region in ("${AWS::Region}", *REGIONS)
    }


def fleet_role_statements(synth: Synth) -> list[dict[str, Any]]:
    return list(
        role_statements(synth, fleet_machine(synth)["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    )


def assume(statements: list[dict[str, Any]]) -> dict[str, Any]:
    (statement,) = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    return statement


@pytest.mark.parametrize("handler", FLEET_FUNCTIONS)
def test_member_roles_are_the_listed_accounts_roles_in_the_organization(
    scoped: Synth, handler: str
) -> None:
    statement = assume(function_statements(scoped, handler))
    assert set(rendered(statement["Resource"])) == member_role_arns()
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}}


def test_the_fleet_machines_role_assumes_the_same_roles_only(scoped: Synth) -> None:
    statement = assume(fleet_role_statements(scoped))
    assert set(rendered(statement["Resource"])) == member_role_arns()
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}}


@pytest.mark.parametrize(
    ("handler", "action", "kind"),
    [
        ("resolve_targets", "states:DescribeStateMachine", "stateMachine:ResetAccess"),
        ("start_elsewhere", "states:StartExecution", "stateMachine:ResetAccess"),
        ("check_elsewhere", "states:DescribeExecution", "execution:ResetAccess:*"),
    ],
)
def test_other_regions_resetaccess_only_in_the_listed_regions(
    scoped: Synth, synth: Synth, handler: str, action: str, kind: str
) -> None:
    (statement,) = [s for s in function_statements(scoped, handler) if s["Action"] == action]
    assert set(rendered(statement["Resource"])) == {
        f"arn:${{AWS::Partition}}:states:{region}:${{AWS::AccountId}}:{kind}" for region in REGIONS
    }
    # Without memberRegions: any Region, with the reason the rule gives.
    (default,) = [s for s in function_statements(synth, handler) if s["Action"] == action]
    assert rendered(default["Resource"]) == [
        f"arn:${{AWS::Partition}}:states:*:${{AWS::AccountId}}:{kind}"
    ]


def test_the_fleets_first_phase_gets_the_lists(scoped: Synth, synth: Synth) -> None:
    _, function = functions_by_handler(scoped)["resolve_targets"]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[MEMBER_ACCOUNTS_VARIABLE] == ",".join(ACCOUNTS)
    assert variables[MEMBER_REGIONS_VARIABLE] == ",".join(REGIONS)
    _, default = functions_by_handler(synth)["resolve_targets"]
    assert MEMBER_ACCOUNTS_VARIABLE not in default["Properties"]["Environment"]["Variables"]


def test_without_context_the_member_roles_keep_their_reasoned_wildcard(synth: Synth) -> None:
    for handler in FLEET_FUNCTIONS:
        statement = assume(function_statements(synth, handler))
        assert rendered(statement["Resource"]) == [
            "arn:${AWS::Partition}:iam::*:role/ResetAccess-FleetMember-*"
        ]
        assert "Condition" not in statement


def test_the_scoped_stack_passes_cdk_nag(scoped: Synth) -> None:
    assert scoped.nag_violations() == []
    assert "iam::*:" not in json.dumps(scoped.template)


@pytest.mark.parametrize(
    ("context", "says"),
    [
        (
            {"memberAccounts": "111122223333,12345"},
            "memberAccounts: '12345' is not valid; give 12-digit account IDs",
        ),
        ({"memberAccounts": ""}, "memberAccounts: '' is not valid"),
        (
            {"memberRegions": "eu-west-1,Europe"},
            "memberRegions: 'Europe' is not valid; give Region names like eu-west-1",
        ),
        ({"memberRegions": ["us-east-1", 7]}, "memberRegions: 7 is not valid"),
        (
            {"organizationId": "org-1"},
            "organizationId: 'org-1' is not an AWS Organizations ID",
        ),
    ],
)
def test_a_wrong_value_stops_synth_with_one_line(context: dict[str, Any], says: str) -> None:
    from aws_cdk import App

    from stacks.fleet_scope import FleetScope

    with pytest.raises(ContextError) as refused:
        FleetScope.from_context(App(context=context))
    message = str(refused.value)
    assert message.startswith(says) and "\n" not in message, message


def test_a_cdk_json_list_is_read_as_the_command_lines_commas() -> None:
    from aws_cdk import App

    from stacks.fleet_scope import FleetScope

    listed = FleetScope.from_context(App(context={"memberAccounts": list(ACCOUNTS)}))
    given = FleetScope.from_context(App(context={"memberAccounts": " , ".join(ACCOUNTS)}))
    assert listed.accounts == given.accounts == ACCOUNTS
