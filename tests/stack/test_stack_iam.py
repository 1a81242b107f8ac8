"""IAM in the synthesized template: no wildcard actions, Resource '*' only where AWS forces it,
and everything an execution creates or destroys bound to the execution tag."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.names import EXECUTION_TAG, REPLACED_BY_TAG, breaker_key, in_flight_key
from stacks.permissions import (
    IN_FLIGHT_ITEMS,
    MARKS_IN_FLIGHT,
    PERMISSIONS,
    READS_IN_FLIGHT,
    SEALS_IN_FLIGHT,
    UNSCOPABLE_ACTIONS,
    Rule,
)
from tests.support.synth import Synth

CARRIES_TAG = {"Null": {f"aws:ResourceTag/{EXECUTION_TAG}": "false"}}
CREATED_WITH_TAG = {"Null": {f"aws:RequestTag/{EXECUTION_TAG}": "false"}}
# The one tag written on (and removed from) an existing resource: replace-root's kept old root
# volume says which execution replaced it; EC2 tags no volume a task detaches.
ONLY_REPLACED_BY = {"ForAllValues:StringEquals": {"aws:TagKeys": [REPLACED_BY_TAG]}}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical ID, statement) for every statement of every identity policy in the template."""
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement
    for logical_id, role in synth.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def all_statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """Identity policies plus resource policies (key policy, queue policy)."""
    yield from identity_statements(synth)
    for logical_id, key in synth.of_type("AWS::KMS::Key").items():
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            yield logical_id, statement
    for logical_id, policy in synth.of_type("AWS::SQS::QueuePolicy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement


def test_no_statement_has_a_wildcard_action(synth: Synth) -> None:
    offending = [
        (logical_id, action)
        for logical_id, statement in all_statements(synth)
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        if "*" in action
    ]
    assert offending == []
    assert not any("NotAction" in s for _, s in all_statements(synth))


def test_only_unscopable_actions_use_resource_star(synth: Synth) -> None:
    offending = sorted(
        {
            f"{logical_id}: {action}"
            for logical_id, statement in identity_statements(synth)
            if "*" in _as_list(statement["Resource"])
            for action in _as_list(statement["Action"])
            if action not in UNSCOPABLE_ACTIONS
        }
    )
    assert offending == []


def test_unscopable_actions_are_read_only_or_telemetry() -> None:
    for action in UNSCOPABLE_ACTIONS:
        verb = action.split(":", 1)[1]
        assert verb.startswith(("Describe", "List", "Get")) or action.split(":")[0] in (
            "xray",
            "logs",
        ), action


def test_deletes_and_terminations_need_the_execution_tag(synth: Synth) -> None:
    for logical_id, statement in identity_statements(synth):
        for action in _as_list(statement["Action"]):
            verb = action.split(":", 1)[1]
            if action == "ec2:DeleteTags":
                assert statement.get("Condition") == ONLY_REPLACED_BY, logical_id
            elif action.startswith("ec2:") and verb.startswith(("Delete", "Terminate")):
                assert statement.get("Condition") == CARRIES_TAG, (logical_id, action)


def test_network_is_created_only_with_the_execution_tag(synth: Synth) -> None:
    creates = ("ec2:CreateVpc", "ec2:CreateInternetGateway")
    found = 0
    for logical_id, statement in identity_statements(synth):
        if any(a in creates for a in _as_list(statement["Action"])):
            assert statement.get("Condition") == CREATED_WITH_TAG, logical_id
            found += 1
    assert found


def test_tags_are_written_only_when_creating(synth: Synth) -> None:
    for logical_id, statement in identity_statements(synth):
        if "ec2:CreateTags" in _as_list(statement["Action"]):
            assert _as_list(statement["Action"]) == ["ec2:CreateTags"], logical_id
            condition = statement["Condition"]
            if "ec2:CreateAction" not in json.dumps(condition):
                # Else only the ReplacedBy tag, and it must be given.
                assert condition == {
                    **ONLY_REPLACED_BY,
                    "Null": {f"aws:RequestTag/{REPLACED_BY_TAG}": "false"},
                }, logical_id


def test_helper_role_is_passed_only_to_ec2(synth: Synth) -> None:
    passes = [s for _, s in identity_statements(synth) if "iam:PassRole" in _as_list(s["Action"])]
    assert passes
    for statement in passes:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
        }
        assert "*" not in json.dumps(statement["Resource"])


def test_rules_refuse_wildcard_actions_and_unexplained_wildcards() -> None:
    with pytest.raises(ValueError, match="no wildcard"):
        Rule(("ec2:Describe*",), ("*",))
    with pytest.raises(ValueError, match="scope them"):
        Rule(("ec2:StopInstances",), ("*",))
    with pytest.raises(ValueError, match="say why"):
        Rule(("ec2:StopInstances",), ("arn:{partition}:ec2:{region}:{account}:instance/*",))


def test_every_wildcard_resource_in_the_table_says_why() -> None:
    for handler, rules in PERMISSIONS.items():
        for rule in rules:
            if any("*" in r for r in rule.resources) and rule.resources != ("*",):
                assert len(rule.why) >= 30, (handler, rule)


def test_each_network_create_is_allowed_only_on_the_type_it_creates(synth: Synth) -> None:
    creates = {
        "ec2:CreateVpc": "vpc",
        "ec2:CreateSubnet": "subnet",
        "ec2:CreateInternetGateway": "internet-gateway",
        "ec2:CreateRouteTable": "route-table",
        "ec2:CreateSecurityGroup": "security-group",
    }
    checked = set()
    for logical_id, statement in identity_statements(synth):
        if statement.get("Condition") != CREATED_WITH_TAG:
            continue
        actions = [a for a in _as_list(statement["Action"]) if a in creates]
        if not actions:
            continue
        # With the tag in the request, a mixed statement would let CreateSubnet into any VPC.
        assert len(actions) == 1, (logical_id, actions)
        kinds = {
            json.dumps(r).rsplit(":", 1)[-1].split("/")[0] for r in _as_list(statement["Resource"])
        }
        assert kinds == {creates[actions[0]]}, (logical_id, actions, kinds)
        checked.add(actions[0])
    assert checked == set(creates)


def test_in_flight_marks_are_written_only_on_in_flight_items() -> None:
    # DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control":
    # dynamodb:LeadingKeys is the partition key. A phase's mark, and the failure path's fence
    # (an UpdateItem that closes and reads), can never touch a lock or a breaker.
    for name in (*MARKS_IN_FLIGHT, *READS_IN_FLIGHT, *SEALS_IN_FLIGHT):
        table_rules = [r for r in PERMISSIONS[name] if r.resources == ("{lock_table_arn}",)]
        in_flight = [(("dynamodb:UpdateItem",), IN_FLIGHT_ITEMS)]
        if name in ("janitor", *SEALS_IN_FLIGHT):
            # The endings also hold the lock and the breaker, each in its own rule: none of
            # their UpdateItems reaches an in-flight item but this one, nor this one another.
            updates = [
                (r.actions, r.conditions) for r in table_rules if "dynamodb:UpdateItem" in r.actions
            ]
            assert in_flight[0] in updates, name
            assert all(c for _, c in updates), name
        else:
            assert [(r.actions, r.conditions) for r in table_rules] == in_flight, name
    (patterns,) = IN_FLIGHT_ITEMS["ForAllValues:StringLike"].values()
    # StringLike's * as fnmatch's; the lock table's other items are not in-flight items.
    assert any(fnmatch.fnmatchcase(in_flight_key("local-1a2b"), p) for p in patterns)
    for other in ("i-0123456789abcdef0", breaker_key("i-0123456789abcdef0"), "fleet#run"):
        assert not any(fnmatch.fnmatchcase(other, p) for p in patterns), other
