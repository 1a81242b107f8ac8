"""The engine's policy evaluation (local/iam.py) against AWS's documented evaluation logic
(IAM User Guide: policy evaluation logic, condition operators, Null condition)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.iam import Authorizer, decide
from local.iam_operations import UnknownOperation
from local.iam_world import Check

TAG = "aws:RequestTag/ResetAccess:Execution"
INSTANCES = "arn:aws:ec2:us-east-1:123456789012:instance/*"


def allow(
    action: Any, resource: Any, condition: dict[str, Any] | None = None, effect: str = "Allow"
) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, "Condition": condition or {}}


def allowed(
    statements: list[dict[str, Any]], action: str, resource: str, **context: str | tuple[str, ...]
) -> bool:
    values = {k: v if isinstance(v, tuple) else (v,) for k, v in context.items()}
    return bool(decide(statements, Check(action, resource, values)))


def test_nothing_is_allowed_without_a_statement_that_allows_it() -> None:
    # Implicit deny: a request no Allow statement matches is denied.
    policy = [allow("ec2:StopInstances", INSTANCES)]
    assert allowed(policy, "ec2:StopInstances", INSTANCES.replace("*", "i-1"))
    assert not allowed(policy, "ec2:StartInstances", INSTANCES.replace("*", "i-1"))
    assert not allowed(
        policy, "ec2:StopInstances", "arn:aws:ec2:us-west-2:123456789012:instance/i-1"
    )


def test_actions_match_without_case_and_resources_with_it() -> None:
    # Action names are case-insensitive; ARNs are case-sensitive (IAM JSON policy elements).
    policy = [allow("ssm:GetParameter", "arn:aws:ssm:us-east-1:1:parameter/reset-access/*")]
    assert allowed(policy, "SSM:getparameter", "arn:aws:ssm:us-east-1:1:parameter/reset-access/x")
    assert not allowed(
        policy, "ssm:GetParameter", "arn:aws:ssm:us-east-1:1:parameter/Reset-Access/x"
    )


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policy = [allow("ec2:StopInstances", "*"), allow("ec2:StopInstances", INSTANCES, effect="Deny")]
    assert not allowed(policy, "ec2:StopInstances", INSTANCES.replace("*", "i-1"))


def test_null_false_requires_the_key_and_true_its_absence() -> None:
    need_tag = [allow("ec2:RunInstances", INSTANCES, {"Null": {TAG: "false"}})]
    assert allowed(need_tag, "ec2:RunInstances", INSTANCES, **{TAG: "local-1"})
    assert not allowed(need_tag, "ec2:RunInstances", INSTANCES)
    no_tag = [allow("ec2:RunInstances", INSTANCES, {"Null": {TAG: "true"}})]
    assert allowed(no_tag, "ec2:RunInstances", INSTANCES)


def test_a_key_the_request_lacks_fails_string_and_bool_operators() -> None:
    # "If the key that you specify in a policy condition is not present in the request
    # context, the values do not match and the condition is false."
    via = [
        allow(
            "kms:Decrypt", "*", {"StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}}
        )
    ]
    assert not allowed(via, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k")
    grant = [allow("kms:CreateGrant", "*", {"Bool": {"kms:GrantIsForAWSResource": "true"}})]
    assert not allowed(grant, "kms:CreateGrant", "arn:aws:kms:us-east-1:1:key/k")
    assert allowed(
        grant,
        "kms:CreateGrant",
        "arn:aws:kms:us-east-1:1:key/k",
        **{"kms:GrantIsForAWSResource": "true"},
    )


def test_values_of_one_key_are_or_and_keys_and_operators_are_and() -> None:
    policy = [
        allow(
            "ec2:CreateTags",
            "*",
            {
                "StringEquals": {"ec2:CreateAction": ["CreateVpc", "CreateSubnet"]},
                "Null": {TAG: "false"},
            },
        )
    ]
    assert allowed(policy, "ec2:CreateTags", "*", **{"ec2:CreateAction": "CreateSubnet", TAG: "x"})
    assert not allowed(
        policy, "ec2:CreateTags", "*", **{"ec2:CreateAction": "CreateTags", TAG: "x"}
    )
    assert not allowed(policy, "ec2:CreateTags", "*", **{"ec2:CreateAction": "CreateVpc"})


def test_like_operators_take_wildcards() -> None:
    policy = [
        allow(
            "iam:PassRole",
            "*",
            {
                "ArnLike": {"aws:SourceArn": "arn:aws:ec2:*:123456789012:instance/*"},
                "StringLike": {"iam:PassedToService": "ec2.*"},
            },
        )
    ]
    assert allowed(
        policy,
        "iam:PassRole",
        "*",
        **{
            "aws:SourceArn": "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
            "iam:PassedToService": "ec2.amazonaws.com",
        },
    )
    assert not allowed(
        policy,
        "iam:PassRole",
        "*",
        **{
            "aws:SourceArn": "arn:aws:ec2:eu-west-1:999999999999:instance/i-1",
            "iam:PassedToService": "ec2.amazonaws.com",
        },
    )


def test_for_all_values_needs_every_request_value_to_match() -> None:
    """ForAllValues (IAM User Guide, "Multivalued context keys"): every value the request has
    matches some policy value; a request without the key passes. DynamoDB's LeadingKeys is the
    item's partition key (Developer Guide, fine-grained access control): the circuit breaker's
    writes are scoped to breaker/* items, so they can never release someone's lock."""
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/Locks"
    policy = [
        allow(
            "dynamodb:UpdateItem",
            table,
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["breaker/*"]}},
        )
    ]
    keys = "dynamodb:LeadingKeys"
    assert allowed(policy, "dynamodb:UpdateItem", table, **{keys: "breaker/i-1"})
    assert not allowed(policy, "dynamodb:UpdateItem", table, **{keys: "i-1"})
    assert not allowed(policy, "dynamodb:UpdateItem", table, **{keys: ("breaker/i-1", "i-1")})
    assert allowed(policy, "dynamodb:UpdateItem", table)


def test_item_operations_name_their_partition_key() -> None:
    from local.iam_operations import OPERATIONS
    from local.iam_world import World

    world = World("123456789012", "us-east-1")
    for action, params in (
        ("dynamodb:DeleteItem", {"TableName": "T", "Key": {"InstanceId": {"S": "breaker/i-1"}}}),
        ("dynamodb:PutItem", {"TableName": "T", "Item": {"InstanceId": {"S": "breaker/i-1"}}}),
    ):
        (check,) = OPERATIONS[action](world, params)
        assert check.context == {"dynamodb:LeadingKeys": ("breaker/i-1",)}
        assert check.resource == "arn:aws:dynamodb:us-east-1:123456789012:table/T"


def test_an_operator_the_evaluator_does_not_know_is_an_error() -> None:
    policy = [
        allow("ec2:StopInstances", "*", {"NumericLessThan": {"aws:MultiFactorAuthAge": "300"}})
    ]
    with pytest.raises(ValueError, match="NumericLessThan"):
        allowed(policy, "ec2:StopInstances", "*", **{"aws:MultiFactorAuthAge": "1"})


def test_a_call_the_map_does_not_know_fails_loudly() -> None:
    authorizer = Authorizer("ResetAccess", "123456789012", "us-east-1", dict)
    with pytest.raises(UnknownOperation, match="ec2:DeleteSnapshot"):
        authorizer.authorize("ResetAccess-Cleanup", "ec2", "DeleteSnapshot", {})


def test_denials_have_aws_codes_and_messages() -> None:
    authorizer = Authorizer(
        "ResetAccess",
        "123456789012",
        "us-east-1",
        lambda: {
            "partition": "aws",
            "region": "us-east-1",
            "account": "123456789012",
            "lock_table_arn": "arn:aws:dynamodb:us-east-1:123456789012:table/Other",
            "topic_arn": "arn:aws:sns:us-east-1:123456789012:Topic",
            "key_arn": "arn:aws:kms:us-east-1:123456789012:key/k",
        },
    )
    with pytest.raises(ClientError) as denied:
        authorizer.authorize(
            "ResetAccess-RecordFailure", "dynamodb", "DeleteItem", {"TableName": "Locks"}
        )
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/ResetAccess-RecordFailure/"
        "ResetAccess-RecordFailure is not authorized to perform: dynamodb:DeleteItem on "
        "resource: arn:aws:dynamodb:us-east-1:123456789012:table/Locks because no "
        "identity-based policy allows the dynamodb:DeleteItem action"
    )
    assert authorizer.checked == {"denied": 1}
