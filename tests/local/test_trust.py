"""AssumeRole as AWS allows it (local/trust.py): the role's trust policy must name the caller.

STS API reference, AssumeRole (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html):
the role's trust policy specifies which principals can assume it; a principal it does not allow
is refused with AccessDenied. moto 5.2.5 hands out credentials for any role to anyone. The member
role (stacks/member.py, its trust as local/stack_twin.py mirrors it) trusts only the fleet
account's ResetAccess roles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import trust
from local.stack_twin import member_trust

FLEET = "123456789012"
MEMBER_ROLE = f"arn:aws:iam::{FLEET}:role/ResetAccess-FleetMember-eu-west-1"


@pytest.fixture
def member_role(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="ResetAccess-FleetMember-eu-west-1",
            AssumeRolePolicyDocument=json.dumps(member_trust(FLEET)),
        )
        yield MEMBER_ROLE


@pytest.mark.parametrize(
    "caller",
    [f"arn:aws:iam::{FLEET}:role/ResetAccess-Role", f"arn:aws:iam::{FLEET}:role/ResetAccess-X"],
)
def test_the_fleet_accounts_resetaccess_roles_may_assume_the_member_role(
    member_role: str, caller: str
) -> None:
    trust.check(member_role, caller)


@pytest.mark.parametrize(
    "caller",
    [
        # Another role of the fleet account: the condition on aws:PrincipalArn fails.
        f"arn:aws:iam::{FLEET}:role/Admin",
        # The same name in an account the trust policy does not name.
        "arn:aws:iam::444455556666:role/ResetAccess-Role",
    ],
)
def test_any_other_principal_is_refused_with_access_denied(member_role: str, caller: str) -> None:
    with pytest.raises(ClientError) as refused:
        trust.check(member_role, caller)

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert caller in str(refused.value) and member_role in str(refused.value)


def test_a_role_that_does_not_exist_cannot_be_assumed(member_role: str) -> None:
    with pytest.raises(ClientError, match="AccessDenied"):
        trust.check(
            f"arn:aws:iam::{FLEET}:role/ResetAccess-FleetMember-ap-south-1",
            f"arn:aws:iam::{FLEET}:role/ResetAccess-Role",
        )


def test_a_deny_statement_wins_over_an_allow() -> None:
    policy = member_trust(FLEET)
    policy["Statement"].append(
        {**policy["Statement"][0], "Effect": "Deny", "Condition": {}},
    )
    assert not trust.allows(policy, f"arn:aws:iam::{FLEET}:role/ResetAccess-Role")


def test_a_call_as_the_member_role_is_checked_against_the_member_policy() -> None:
    """What the engine does with a handler's call made with the member role's credentials
    (local/engine.py): the member template's policy, in the member's account and Region."""
    from local.iam import Authorizer
    from local.locations import Location
    from local.stack_twin import member_policy

    where = Location("444455556666", "eu-west-1")
    role = f"arn:aws:iam::{where.account}:role/ResetAccess-FleetMember-eu-west-1"
    iam = Authorizer("ResetAccess", FLEET, "us-east-1", dict)
    machine = f"arn:aws:states:eu-west-1:{where.account}:stateMachine:"
    start = ("states", "StartExecution")

    iam.authorize_role(
        role,
        member_policy(where),
        "eu-west-1",
        (*start, {"stateMachineArn": machine + "ResetAccess"}),
    )
    with pytest.raises(ClientError) as denied:
        iam.authorize_role(
            role,
            member_policy(where),
            "eu-west-1",
            (*start, {"stateMachineArn": machine + "Other"}),
        )

    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "assumed-role/ResetAccess-FleetMember-eu-west-1" in str(denied.value)
