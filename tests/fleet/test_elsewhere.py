"""A fleet's targets in two accounts and three Regions: ResolveTargets finds each instance where
it lives, and a target in another Region (where Step Functions' StartExecution integration
cannot reach) has its ResetAccess execution started and followed there by StartElsewhere and
CheckElsewhere, as the member account's role when the account is another.

The phase handlers run against moto, which keeps accounts (by the caller's credentials) and
Regions apart, behind AWS's rules (local/aws_rules.py: a role that is not there cannot be
assumed) and each function's own policy (stacks/permissions.py, enforced by local/iam.py; a
call made as the member role is that role's, stacks/member.py, and is not checked here).
The children are stand-ins of ResetAccess (one state each): what is tested is where and with
what they are started, and that their end reaches the fleet's result; the reset itself is
tested on the engine (tests/fleet/test_fleet_workflow.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas import runtime
from lambdas.errors import InvalidInput, NotReady
from lambdas.handlers import check_elsewhere, resolve_targets, start_elsewhere
from lambdas.logic.fleet import outcome_of
from lambdas.names import MEMBER_ACCOUNTS_VARIABLE, MEMBER_REGIONS_VARIABLE, member_role_name
from local import aws_rules
from local.calls import Call, CallPipeline, Layer
from local.iam import Authorizer
from local.seams import LambdaContext
from stacks.permissions import PERMISSIONS

HOME = "123456789012"
MEMBER = "111122223333"
NOWHERE = "444455556666"
HOME_REGION = "us-east-1"
FLEET = f"arn:aws:states:{HOME_REGION}:{HOME}:execution:ResetAccessFleet:fleet-1"
WEB = [{"Key": "tag:Team", "Values": ["web"]}]
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": HOME}, "Action": "sts:AssumeRole"},
        ],
    }
)
SUCCEEDS = {"StartAt": "Reset", "States": {"Reset": {"Type": "Pass", "End": True}}}
FAILS = {
    "StartAt": "Reset",
    "States": {"Reset": {"Type": "Fail", "Error": "RescueFailed", "Cause": "no disk"}},
}


def as_account(account: str, role: str = "Setup") -> dict[str, Any]:
    """Client arguments acting in `account` (moto maps assumed credentials to the role's; a
    role that does not exist only before AWS's rules apply)."""
    credentials = boto3.client("sts", region_name=HOME_REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="setup"
    )["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def deploy(account: str, region: str, machine: dict[str, Any], member_role: bool) -> str:
    """ResetAccess (a stand-in) in one account and Region, with an instance tagged web."""
    where = {"region_name": region, **(as_account(account) if account != HOME else {})}
    iam = boto3.client("iam", **where)
    role = iam.create_role(RoleName=f"machine-{region}", AssumeRolePolicyDocument=TRUST)
    if member_role:
        iam.create_role(RoleName=member_role_name(region), AssumeRolePolicyDocument=TRUST)
    boto3.client("stepfunctions", **where).create_state_machine(
        name="ResetAccess", definition=json.dumps(machine), roleArn=role["Role"]["Arn"]
    )
    ec2 = boto3.client("ec2", **where)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=image,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Team", "Value": "web"}]}
            ],
        )["Instances"][0]["InstanceId"]
    )


class Functions:
    """Which phase function runs, and its policy checked on each call it makes itself."""

    def __init__(self) -> None:
        self.running: str | None = None
        self.iam = Authorizer(
            "ResetAccess",
            HOME,
            HOME_REGION,
            lambda: {
                "partition": "aws",
                "region": HOME_REGION,
                "account": HOME,
                "lock_table_arn": f"arn:aws:dynamodb:{HOME_REGION}:{HOME}:table/ResetAccess-Locks",
                "state_machine_name": "ResetAccess",
            },
        )

    def authorize(self, call: Call) -> None:
        key = call.client._request_signer._credentials.access_key
        # Temporary (assumed) credentials' key IDs start with ASIA: the member role's calls.
        if not key.startswith("ASIA"):
            self.iam.authorize(call.function, call.service, call.operation, call.params)


FUNCTIONS = Functions()


@pytest.fixture
def places(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str], str]]:
    """(account, Region) -> its instance; then every call as AWS's rules allow it."""
    for name, value in {
        "AWS_DEFAULT_REGION": HOME_REGION,
        "AWS_REGION": HOME_REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOCK_TABLE_NAME": "ResetAccess-Locks",
        "KMS_KEY_ARN": f"arn:aws:kms:{HOME_REGION}:{HOME}:key/k",
        "RESCUE_DOCUMENT_NAME": "ResetAccess-Rescue",
        "HELPER_INSTANCE_PROFILE_ARN": f"arn:aws:iam::{HOME}:instance-profile/h",
        "STATE_MACHINE_ARN": f"arn:aws:states:{HOME_REGION}:{HOME}:stateMachine:ResetAccess",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset_clients()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("dynamodb", region_name=HOME_REGION).create_table(
            TableName="ResetAccess-Locks",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "InstanceId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "InstanceId", "KeyType": "HASH"}],
        )
        found = {
            (HOME, HOME_REGION): deploy(HOME, HOME_REGION, SUCCEEDS, member_role=False),
            (HOME, "us-west-2"): deploy(HOME, "us-west-2", FAILS, member_role=False),
            (MEMBER, HOME_REGION): deploy(MEMBER, HOME_REGION, SUCCEEDS, member_role=True),
            (MEMBER, "eu-west-1"): deploy(MEMBER, "eu-west-1", SUCCEEDS, member_role=True),
        }
        rules = Layer("aws_rules", lambda c: aws_rules.check(c.client, c.operation, c.params))
        FUNCTIONS.iam.reset()
        with CallPipeline([Layer("iam", FUNCTIONS.authorize), rules], lambda: FUNCTIONS.running):
            yield found
    runtime.reset_clients()


def invoke(module: Any, event: dict[str, Any]) -> Any:
    name = module.__name__.rsplit(".", 1)[-1]
    function = "ResetAccess-" + "".join(part.title() for part in name.split("_"))
    context = LambdaContext(name, f"arn:aws:lambda:{HOME_REGION}:{HOME}:function:{name}", "r")
    FUNCTIONS.running = function
    try:
        return module.handler({"state": name, "execution": "fleet-1", **event}, context)
    finally:
        FUNCTIONS.running = None


def resolve(locations: list[dict[str, Any]]) -> dict[str, Any]:
    fleet_input = {"Targets": WEB, "TargetLocations": locations, "MaxConcurrency": 1}
    result: dict[str, Any] = invoke(resolve_targets, {"executionArn": FLEET, "input": fleet_input})
    return result


def follow(target: dict[str, Any]) -> dict[str, Any]:
    """What the fleet's StartElsewhere, CheckElsewhere (polled) states do for one target."""
    started = invoke(start_elsewhere, {"target": target})
    # A retried start (the Task's TRANSIENT retry) finds the execution it started.
    assert invoke(start_elsewhere, {"target": target}) == started
    for _ in range(200):
        try:
            child: dict[str, Any] = invoke(check_elsewhere, {"target": target, "started": started})
            return child
        except NotReady:
            pass
    raise AssertionError(f"{started} never ended")


ALL = [
    {"Accounts": [HOME, MEMBER], "Regions": [HOME_REGION]},
    {"Accounts": [HOME], "Regions": ["us-west-2"]},
    {"Accounts": [MEMBER], "Regions": ["eu-west-1"]},
]


def test_each_instance_is_targeted_in_its_own_account_and_region(
    places: dict[tuple[str, str], str],
) -> None:
    targets = resolve(ALL)["targets"]

    where = {(t["Account"], t["Region"]): t for t in targets}
    assert {k: t["InstanceId"] for k, t in where.items()} == places
    for (account, region), target in where.items():
        assert target["StateMachineArn"] == (
            f"arn:aws:states:{region}:{account}:stateMachine:ResetAccess"
        )
        assert target["Input"]["InstanceId"] == places[(account, region)]
        # Another Region: the functions; this Region: the `.sync` integration.
        assert target.get("Remote", False) == (region != HOME_REGION)
        member = f"arn:aws:iam::{account}:role/{member_role_name(region)}"
        assert target.get("RoleArn") == (member if account == MEMBER else None)
    # Each statement of ResolveTargets' policy alone allowed one of its calls.
    assert FUNCTIONS.iam.denied == []
    rules = range(len(PERMISSIONS["resolve_targets"]))
    assert [i for i in rules if ("resolve_targets", i) not in FUNCTIONS.iam.sole_grants] == []


def test_a_reset_in_another_region_is_started_there_and_followed_to_its_end(
    places: dict[tuple[str, str], str],
) -> None:
    targets = {(t["Account"], t["Region"]): t for t in resolve(ALL)["targets"]}

    member = targets[(MEMBER, "eu-west-1")]
    child = follow(member)
    assert child["Status"] == "SUCCEEDED"
    # Started in the member account's eu-west-1, with the instance's own input, once.
    arn = child["ExecutionArn"]
    assert arn.split(":")[3:5] == ["eu-west-1", MEMBER]
    sfn = boto3.client(
        "stepfunctions",
        region_name="eu-west-1",
        **as_account(MEMBER, member_role_name("eu-west-1")),
    )
    executions = sfn.list_executions(stateMachineArn=member["StateMachineArn"])["executions"]
    assert [e["executionArn"] for e in executions] == [arn]
    assert child["Output"]["InstanceId"] == places[(MEMBER, "eu-west-1")]
    assert outcome_of({"target": member, "child": child})["Outcome"] == "Succeeded"

    # This account's us-west-2: its ResetAccess failed, and the fleet's result says why.
    failed = follow(targets[(HOME, "us-west-2")])
    line = outcome_of({"target": targets[(HOME, "us-west-2")], "child": failed})
    assert (line["Outcome"], line["Error"], line["Cause"]) == ("Failed", "RescueFailed", "no disk")
    assert (line["Account"], line["Region"]) == (HOME, "us-west-2")

    # Each statement of the two functions' policies alone allowed one of their calls.
    assert FUNCTIONS.iam.denied == []
    for handler in ("start_elsewhere", "check_elsewhere"):
        for index in range(len(PERMISSIONS[handler])):
            assert (handler, index) in FUNCTIONS.iam.sole_grants, (handler, index)


def test_an_account_without_the_member_stack_is_refused_naming_what_to_deploy(
    places: dict[tuple[str, str], str],
) -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve([*ALL, {"Accounts": [NOWHERE], "Regions": ["eu-west-1"]}])

    message = str(refused.value)
    assert f"{NOWHERE}:role/{member_role_name('eu-west-1')}" in message
    assert "deploy the member stack" in message and "deployment=member" in message


def test_a_region_of_this_account_without_resetaccess_is_refused_naming_it(
    places: dict[tuple[str, str], str],
) -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve([{"Accounts": [HOME], "Regions": [HOME_REGION, "ap-southeast-2"]}])

    message = str(refused.value)
    assert f"{HOME}/ap-southeast-2" in message and "deployment=member" in message
    # Its policy let ResolveTargets ask (the answer, not AccessDenied, made the refusal).
    assert FUNCTIONS.iam.denied == []
    assert ("resolve_targets", 2) in FUNCTIONS.iam.sole_grants


def test_a_target_outside_the_stacks_member_lists_is_refused_before_anything(
    places: dict[tuple[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stack deployed with -c memberAccounts / memberRegions (stacks/fleet_scope.py).
    monkeypatch.setenv(MEMBER_ACCOUNTS_VARIABLE, MEMBER)
    monkeypatch.setenv(MEMBER_REGIONS_VARIABLE, "us-west-2,eu-west-1")
    table = boto3.client("dynamodb", region_name=HOME_REGION)

    with pytest.raises(InvalidInput) as refused:
        resolve([*ALL, {"Accounts": [NOWHERE], "Regions": [HOME_REGION]}])

    assert f"account {NOWHERE} is not in this stack's memberAccounts ({MEMBER})" in str(
        refused.value
    )
    # Nothing started: not even the fleet's error count.
    assert table.scan(TableName="ResetAccess-Locks")["Items"] == []
    # Within them (this account and Region always are), the fleet resolves as before.
    assert len(resolve(ALL)["targets"]) == len(places)
