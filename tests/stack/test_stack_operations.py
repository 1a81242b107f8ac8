"""Operating the stack: the encrypted topic and who may publish to it, the alarms that call a
person, the dashboard, the context values, and two copies side by side in one account."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.logic.telemetry import NAMESPACE
from tests.support.synth import Synth, functions_by_handler

NOTIFYING = ("preflight", "publish_result", "record_failure", "janitor")


def one(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["PolicyDocument"]["Statement"])


def test_topic_is_encrypted_with_the_stack_key_and_refuses_plain_http(synth: Synth) -> None:
    key_id, _ = one(synth.of_type("AWS::KMS::Key"))
    topic_id, topic = one(synth.of_type("AWS::SNS::Topic"))
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    _, policy = one(synth.of_type("AWS::SNS::TopicPolicy"))
    found = statements(policy["Properties"])
    deny = [s for s in found if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    cloudwatch = [s for s in found if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch) == 1 and cloudwatch[0]["Action"] == "sns:Publish"
    assert cloudwatch[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == {
        "Ref": "AWS::AccountId"
    }
    assert synth.of_type("AWS::SNS::Subscription") == {}  # no notifyEmail in cdk.json
    assert synth.template["Outputs"]["NotifyTopicArn"]["Value"] == {"Ref": topic_id}


def _role_policy(synth: Synth, handler: str) -> list[dict[str, Any]]:
    _, function = functions_by_handler(synth)[handler]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += statements(policy["Properties"])
    return found


@pytest.mark.parametrize("handler", NOTIFYING)
def test_only_the_endings_and_preflight_publish_and_only_to_the_topic(
    synth: Synth, handler: str
) -> None:
    topic_id, _ = one(synth.of_type("AWS::SNS::Topic"))
    publish = [s for s in _role_policy(synth, handler) if "sns:Publish" in json.dumps(s["Action"])]
    assert len(publish) == 1 and publish[0]["Action"] == "sns:Publish"
    assert "ResetAccess-Notifications" in json.dumps(publish[0]["Resource"])
    kms = [s for s in _role_policy(synth, handler) if "sns." in json.dumps(s.get("Condition"))]
    assert len(kms) == 1
    assert sorted(kms[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    context = kms[0]["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
    assert "ResetAccess-Notifications" in json.dumps(context)
    assert topic_id  # the ARN is built from the topic's name: a reference would be a cycle


def test_no_other_function_publishes(synth: Synth) -> None:
    for handler in functions_by_handler(synth):
        if handler not in NOTIFYING:
            assert "sns:" not in json.dumps(_role_policy(synth, handler)), handler


def test_functions_know_the_topic_and_the_cooldown(synth: Synth) -> None:
    topic_id, _ = one(synth.of_type("AWS::SNS::Topic"))
    for _, function in functions_by_handler(synth).values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["NOTIFY_TOPIC_ARN"] == {"Ref": topic_id}
        assert variables["ALARM_COOLDOWN_SECONDS"] == str(6 * 3600)


def test_alarms_call_the_topic_and_never_start_a_reset(synth: Synth) -> None:
    topic_id, _ = one(synth.of_type("AWS::SNS::Topic"))
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert sorted(alarms) == ["ResetAccessOps-DeadLetters", "ResetAccessOps-FailedExecutions"]
    prefix = synth.template["Outputs"]["AlarmPrefix"]["Value"]
    for name, alarm in alarms.items():
        # The alarm rule starts a reset for alarms named with the prefix: not for these.
        assert not name.startswith(prefix)
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
    failed = alarms["ResetAccessOps-FailedExecutions"]
    names = {
        m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m
    }
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut"}
    dead = alarms["ResetAccessOps-DeadLetters"]
    assert dead["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert "aws sqs receive-message --queue-url" in json.dumps(dead["AlarmDescription"])


def test_dashboard_shows_executions_outcomes_downtime_and_phases(synth: Synth) -> None:
    _, dashboard = one(synth.of_type("AWS::CloudWatch::Dashboard"))
    assert dashboard["Properties"]["DashboardName"] == "ResetAccessOps"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("Resets", "DowntimeSeconds", "TotalSeconds", "PhaseSeconds"):
        assert metric in body, metric
    assert NAMESPACE in body and "ExecutionsFailed" in body
    assert "ApproximateNumberOfMessagesVisible" in body


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stackName": "1-copy"}, "stackName: '1-copy' is not a CloudFormation stack name"),
        ({"kmsAlias": "alias/aws/ssm"}, "kmsAlias: 'alias/aws/ssm' is not a KMS alias"),
        ({"notifyEmail": "ops at example"}, "notifyEmail: 'ops at example' is not an"),
        ({"alarmCooldownHours": "six"}, "alarmCooldownHours: 'six' is not a number"),
        ({"alarmCooldownHours": 0}, "alarmCooldownHours: 0 is not a number"),
        ({"alarmPrefix": "ResetAccessO"}, "alarmPrefix: 'ResetAccessO' would match"),
    ],
)
def test_a_bad_context_value_is_one_line_naming_it(context: dict[str, Any], message: str) -> None:
    from stacks.app import build_app
    from stacks.context import ContextError

    with pytest.raises(ContextError) as refused:
        build_app(context={"aws:cdk:disable-asset-staging": True, **context})
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_two_copies_in_one_account_share_no_name(tmp_path: Any, synth: Synth) -> None:
    """A second copy (`-c stackName=ResetAccessTest`) with an email subscription and a 2-hour
    cooldown: every name that must be unique in an account and Region differs."""
    from stacks.app import build_app

    app, stack = build_app(
        outdir=str(tmp_path),
        context={
            "aws:cdk:disable-asset-staging": True,
            "stackName": "ResetAccessTest",
            "notifyEmail": "ops@example.com",
            "alarmCooldownHours": "2",
        },
    )
    assert stack.stack_name == "ResetAccessTest"
    template = app.synth().get_stack_by_name("ResetAccessTest").template
    resources = template["Resources"]

    def named(kind: str, key: str, source: dict[str, Any]) -> set[str]:
        return {
            json.dumps(r["Properties"][key])
            for r in source.values()
            if r["Type"] == kind and key in r["Properties"]
        }

    for kind, key in (
        ("AWS::KMS::Alias", "AliasName"),
        ("AWS::SNS::Topic", "TopicName"),
        ("AWS::CloudWatch::Alarm", "AlarmName"),
        ("AWS::CloudWatch::Dashboard", "DashboardName"),
        # The workflow's log group is named after the stack (stacks/workflow.py).
        ("AWS::Logs::LogGroup", "LogGroupName"),
        # The fleet names itself (its Distributed Map's ARNs are scoped by name): <stack>Fleet.
        ("AWS::StepFunctions::StateMachine", "StateMachineName"),
    ):
        mine, theirs = named(kind, key, resources), named(kind, key, synth.resources)
        assert mine and theirs and not mine & theirs, (kind, mine, theirs)
    # Tables, functions, roles, their log groups, ResetAccess and the document get names from
    # CloudFormation (stack name + logical ID): none is set by hand, so none can collide.
    for kind, key in (
        ("AWS::DynamoDB::Table", "TableName"),
        ("AWS::Lambda::Function", "FunctionName"),
        ("AWS::IAM::Role", "RoleName"),
        ("AWS::SSM::Document", "Name"),
    ):
        assert named(kind, key, resources) == set(), kind
    assert template["Outputs"]["AlarmPrefix"]["Value"] == "ResetAccessTest-"
    subscriptions = [r for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert [(s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions] == [
        ("email", "ops@example.com")
    ]
    variables = next(
        r["Properties"]["Environment"]["Variables"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    )
    assert variables["ALARM_COOLDOWN_SECONDS"] == str(2 * 3600)
