"""The synthesized template: what the stack promises, read from the template itself."""

from __future__ import annotations

import json
from typing import Any

from lambdas.names import DEFAULT_ALARM_PREFIX, FLEET_STATE_MACHINE_NAME
from stacks.project import KEY_ALIAS
from statemachine.definition import render
from statemachine.phases import EVENT_FUNCTIONS, FLEET_PHASES, PHASES
from tests.support.synth import Synth, functions_by_handler


def one(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def reset_access_machine(synth: Synth) -> tuple[str, dict[str, Any]]:
    """ResetAccess's state machine (the fleet's is stacks/fleet.py's, tested apart)."""
    return one(
        {
            key: value
            for key, value in synth.of_type("AWS::StepFunctions::StateMachine").items()
            if key.startswith("Workflow")
        }
    )


def test_state_machine_is_standard_with_logging_and_tracing(synth: Synth) -> None:
    _, machine = reset_access_machine(synth)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    # History already holds every state's input and output; logs must not copy them.
    assert logging["IncludeExecutionData"] is False
    # The bytes the local engine runs, placeholders and all.
    assert props["DefinitionString"] == render()


def test_one_function_per_phase_and_its_arn_in_the_definition(synth: Synth) -> None:
    deployed = functions_by_handler(synth)
    assert sorted(deployed) == sorted(p.handler for p in (*PHASES, *EVENT_FUNCTIONS, *FLEET_PHASES))
    _, machine = reset_access_machine(synth)
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    text = machine["Properties"]["DefinitionString"]
    for phase in PHASES:
        arn = substitutions[phase.placeholder]
        assert arn == {"Fn::GetAtt": [deployed[phase.handler][0], "Arn"]}, phase.name
        assert "${" + phase.placeholder + "}" in text, phase.name
    assert not any(p.placeholder in substitutions for p in EVENT_FUNCTIONS)


def test_functions_run_python313_arm64_with_the_layer_tracing_and_own_role(synth: Synth) -> None:
    layer_id, _ = one(synth.of_type("AWS::Lambda::LayerVersion"))
    roles = set()
    code = set()
    for handler, (_, function) in functions_by_handler(synth).items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13", handler
        assert props["Architectures"] == ["arm64"], handler
        assert props["Layers"] == [{"Ref": layer_id}], handler
        assert props["TracingConfig"] == {"Mode": "Active"}, handler
        assert "ReservedConcurrentExecutions" not in props
        assert props["MemorySize"] >= 256 and 1 <= props["Timeout"] <= 900, handler
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "reset-access"
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        for name in (
            "LOCK_TABLE_NAME",
            "KMS_KEY_ARN",
            "RESCUE_DOCUMENT_NAME",
            "HELPER_INSTANCE_PROFILE_ARN",
            "HELPER_ROLE_ARN",
        ):
            assert env[name], (handler, name)
        # The janitor reads its executions, ResolveTargets starts them (the fleet's children).
        assert bool(env["STATE_MACHINE_ARN"]) == (
            handler in {p.handler for p in (*EVENT_FUNCTIONS, *FLEET_PHASES)}
        ), handler
        assert "LoggingConfig" in props and "LogGroup" in props["LoggingConfig"], handler
        roles.add(json.dumps(props["Role"]))
        code.add(json.dumps(props["Code"], sort_keys=True))
    assert len(roles) == len(functions_by_handler(synth)), "each function needs its own role"
    assert len(code) == 1, "all functions share one code asset"


def test_every_log_group_has_a_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    # One per function and one per state machine (ResetAccess and the fleet's).
    assert len(groups) == len(synth.of_type("AWS::Lambda::Function")) + 2
    for logical_id, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), logical_id


def test_kms_key_rotates_and_its_policy_has_no_wildcard_action(synth: Synth) -> None:
    key_id, key = one(synth.of_type("AWS::KMS::Key"))
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    _, alias = one(synth.of_type("AWS::KMS::Alias"))
    assert alias["Properties"]["AliasName"] == KEY_ALIAS
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    for statement in props["KeyPolicy"]["Statement"]:
        actions = _as_list(statement["Action"])
        assert not any("*" in a for a in actions), statement
        assert statement["Principal"] != "*" and statement["Principal"] != {"AWS": "*"}
        if any(a in actions for a in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")):
            # Using the key is only ever possible inside Parameter Store calls, or SNS's for
            # the stack's topic (its publishers, and CloudWatch alarms of this account).
            condition = statement["Condition"]
            if statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}:
                assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
                assert ":alarm:" in json.dumps(condition["ArnLike"]["aws:SourceArn"])
                continue
            via = json.dumps(condition["StringEquals"]["kms:ViaService"])
            assert "ssm." in via or "sns." in via, statement
            if "sns." in via:
                topic = json.dumps(
                    condition["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
                )
                assert ":ResetAccess-Notifications" in topic, statement


def _role_users(synth: Synth, service: str) -> set[str]:
    """The roles the key policy lets use the key through `service`."""
    _, key = one(synth.of_type("AWS::KMS::Key"))
    users: set[str] = set()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement["Principal"].get("AWS")
        if "Fn::GetAtt" not in json.dumps(principal):
            continue
        if f"{service}." not in json.dumps(statement["Condition"]["StringEquals"]):
            continue
        users |= {p["Fn::GetAtt"][0] for p in _as_list(principal)}
    return users


def _roles(synth: Synth, *handlers: str) -> set[str]:
    functions = functions_by_handler(synth)
    return {functions[h][1]["Properties"]["Role"]["Fn::GetAtt"][0] for h in handlers}


def test_key_users_are_exactly_the_roles_that_store_or_publish_keys(synth: Synth) -> None:
    assert _role_users(synth, "ssm") == _roles(synth, "create_key", "publish_result")


def test_key_users_through_sns_are_exactly_the_roles_that_notify(synth: Synth) -> None:
    notifying = _roles(synth, "preflight", "publish_result", "record_failure", "janitor")
    assert _role_users(synth, "sns") == notifying


def test_lock_table(synth: Synth) -> None:
    _, table = one(synth.of_type("AWS::DynamoDB::Table"))
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "InstanceId", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "InstanceId", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ExpiresAt", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_helper_role_has_only_ssm_core(synth: Synth) -> None:
    helper_roles = {
        k: r
        for k, r in synth.of_type("AWS::IAM::Role").items()
        if "ec2.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    }
    role_id, role = one(helper_roles)
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert managed.count("arn:") == 1 and "policy/AmazonSSMManagedInstanceCore" in managed
    assert "Policies" not in role["Properties"]
    attached = [
        p
        for p in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    assert attached == []
    _, profile = one(synth.of_type("AWS::IAM::InstanceProfile"))
    assert profile["Properties"]["Roles"] == [{"Ref": role_id}]


def _rules(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["EventPattern"]["source"][0]: r
        for r in synth.of_type("AWS::Events::Rule").values()
    }


def test_alarm_rule_starts_the_fleet_and_its_role_may_start_nothing_else(synth: Synth) -> None:
    rule = _rules(synth)["aws.cloudwatch"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "alarmName": [{"prefix": DEFAULT_ALARM_PREFIX}],
            "state": {"value": ["ALARM"]},
        },
    }
    (target,) = rule["Targets"]
    # A multi-instance alarm resets each of its instances; the fleet does that (README).
    (fleet_id,) = [
        key
        for key, machine in synth.of_type("AWS::StepFunctions::StateMachine").items()
        if machine["Properties"].get("StateMachineName") == FLEET_STATE_MACHINE_NAME
    ]
    assert target["Arn"] == {"Ref": fleet_id}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": fleet_id}}
    ]
    assert target.get("InputPath", "$") == "$" and "Input" not in target
    assert target["DeadLetterConfig"]["Arn"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_janitor_rule_watches_this_state_machine_only(synth: Synth) -> None:
    rule = _rules(synth)["aws.states"]["Properties"]
    machine_id, _ = reset_access_machine(synth)
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["ABORTED", "TIMED_OUT", "FAILED"],
            "stateMachineArn": [{"Ref": machine_id}],
        },
    }
    (target,) = rule["Targets"]
    janitor_id, _ = functions_by_handler(synth)["janitor"]
    assert target["Arn"] == {"Fn::GetAtt": [janitor_id, "Arn"]}
    assert target["DeadLetterConfig"]["Arn"]


def test_dead_letter_queue_is_encrypted_and_tls_only(synth: Synth) -> None:
    queue_id, queue = one(synth.of_type("AWS::SQS::Queue"))
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = synth.of_type("AWS::SQS::QueuePolicy").values()
    denies = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert queue_id


def test_outputs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    assert {"StateMachineArn", "LockTableName", "RescueDocumentName", "KmsKeyArn"} <= set(outputs)
    # reset-access arm-alarm names alarms after the deployed prefix, not a flag of its own.
    assert outputs["AlarmPrefix"]["Value"] == "ResetAccess-"


def test_state_machine_role_invokes_exactly_our_functions(synth: Synth) -> None:
    machine_id, machine = reset_access_machine(synth)
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoke = [s for s in statements if "lambda:InvokeFunction" in _as_list(s["Action"])]
    (statement,) = invoke
    assert _as_list(statement["Action"]) == ["lambda:InvokeFunction"]
    functions = functions_by_handler(synth)
    # The janitor is EventBridge's to start, not the workflow's.
    expected = {functions[p.handler][0] for p in PHASES}
    resources = statement["Resource"]
    invoked = {r["Fn::GetAtt"][0] for r in resources if "Fn::GetAtt" in r}
    qualified = {r["Fn::Join"][1][0]["Fn::GetAtt"][0] for r in resources if "Fn::Join" in r}
    assert invoked == expected == qualified
    others = {a for s in statements if s not in invoke for a in _as_list(s["Action"])}
    assert all(a.startswith(("logs:", "xray:")) for a in others), others
    assert machine_id


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_people_may_decrypt_published_secrets_but_never_pending_keys(synth: Synth) -> None:
    _, key = one(synth.of_type("AWS::KMS::Key"))
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if ":root" not in json.dumps(statement["Principal"]):
            continue  # the functions' own roles
        if set(_as_list(statement["Action"])) & {"kms:Decrypt", "kms:Encrypt"}:
            names = json.dumps(statement["Condition"]["StringLike"])
            assert "kms:EncryptionContext:PARAMETER_ARN" in names
            assert "/reset-access/" not in names, "pending keys are the functions' alone"
            assert "/ec2rl/openssh/" in names or "/EC2Rescue/Passwords/" in names


def test_failed_janitor_runs_are_kept_in_the_dead_letter_queue(synth: Synth) -> None:
    janitor_id, _ = functions_by_handler(synth)["janitor"]
    queue_id, _ = one(synth.of_type("AWS::SQS::Queue"))
    _, config = one(synth.of_type("AWS::Lambda::EventInvokeConfig"))
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": janitor_id}
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [queue_id, "Arn"]
    }
