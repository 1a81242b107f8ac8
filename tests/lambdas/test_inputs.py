"""Input validation: what is accepted, with which defaults, and what a refusal says."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from lambdas.errors import InvalidInput
from lambdas.logic.inputs import Request, parse_request
from lambdas.logic.keys import public_key_fingerprint


def openssh_line(key_type: str = "ssh-ed25519", comment: str = "me@laptop") -> str:
    blob = struct.pack(">I", len(key_type)) + key_type.encode() + struct.pack(">I", 32) + bytes(32)
    return f"{key_type} {base64.b64encode(blob).decode()} {comment}".strip()


def test_defaults_match_the_documented_table() -> None:
    assert parse_request({"InstanceId": "i-0123456789abcdef0"}) == Request(
        instance_id="i-0123456789abcdef0",
        subnet="CreateNewVPC",
        helper_instance_type="t3.small",
        mode="auto",
        public_key=None,
        key_type="rsa",
        backup="ami",
        create_password_enabled_ami=True,
        dry_run=False,
    )


def test_the_seed_s_instance_type_alias_is_accepted() -> None:
    request = parse_request({"InstanceId": "i-01234567", "EC2RescueInstanceType": "t3.medium"})
    assert request.helper_instance_type == "t3.medium"
    with pytest.raises(InvalidInput, match="differs from its alias"):
        parse_request(
            {
                "InstanceId": "i-01234567",
                "EC2RescueInstanceType": "t3.medium",
                "HelperInstanceType": "t3.large",
            }
        )


def test_public_key_is_checked_and_kept_as_given() -> None:
    line = openssh_line()
    assert parse_request({"InstanceId": "i-01234567", "PublicKey": line}).public_key == line
    with pytest.raises(InvalidInput, match="is a 'ssh-ed25519' key, not 'ssh-rsa'"):
        parse_request(
            {"InstanceId": "i-01234567", "PublicKey": line.replace("ssh-ed25519", "ssh-rsa", 1)}
        )
    with pytest.raises(InvalidInput, match="comment may hold only"):
        parse_request(
            {"InstanceId": "i-01234567", "PublicKey": openssh_line(comment="x'; rm -rf /")}
        )
    with pytest.raises(InvalidInput, match="KeyType: applies to a generated key only"):
        parse_request({"InstanceId": "i-01234567", "PublicKey": line, "KeyType": "rsa"})


def test_fingerprint_is_sha256_of_the_blob_without_padding() -> None:
    fingerprint = public_key_fingerprint(openssh_line())
    assert fingerprint.startswith("SHA256:") and not fingerprint.endswith("=")


def test_long_values_are_clipped_in_messages() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request({"InstanceId": "i-" + "a" * 100_000})
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize(
    "event,message",
    [
        (
            {
                "source": "aws.cloudwatch",
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {"alarmName": "ResetAccess-x", "state": {"value": "OK"}},
            },
            "is not in ALARM",
        ),
        (
            {
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "detail": {},
            },
            "only CloudWatch Alarm State Change",
        ),
        (
            {
                "source": "aws.cloudwatch",
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {
                    "alarmName": "ResetAccess-x",
                    "state": {"value": "ALARM"},
                    "configuration": {"metrics": [{"id": "e1", "expression": "1"}]},
                },
            },
            "watches no metric with an InstanceId",
        ),
    ],
)
def test_alarm_events_that_name_no_single_instance_are_refused(
    event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_request(event)


def test_alarm_on_several_instances_is_refused() -> None:
    metrics = [
        {"id": f"m{i}", "metricStat": {"metric": {"dimensions": {"InstanceId": f"i-0000000{i}"}}}}
        for i in range(2)
    ]
    with pytest.raises(InvalidInput, match="watches several instances"):
        parse_request(
            {
                "source": "aws.cloudwatch",
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {
                    "alarmName": "ResetAccess-x",
                    "state": {"value": "ALARM"},
                    "configuration": {"metrics": metrics},
                },
            }
        )


def test_the_workflow_accepts_the_key_types_the_agent_and_document_accept() -> None:
    from lambdas.logic.rescue_contract import PUBLIC_KEY_TYPES
    from rescue.linux.keys import KEY_TYPES

    # Three gates see a PublicKey (the input, the document's pattern, the agent): one list.
    assert set(PUBLIC_KEY_TYPES) == set(KEY_TYPES)


def test_every_wrong_field_is_named_in_one_refusal() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request(
            {
                "InstanceId": "i-123",
                "SubnetId": 7,
                "Mode": "fast",
                "DryRun": "true",
                "Backup": "tape",
                "Force": True,
            }
        )
    problems = str(refused.value).split("; ")
    named = [problem.split(": ", 1)[0] for problem in problems]
    assert named == ["InstanceId", "SubnetId", "Mode", "Backup", "DryRun", "'Force'"], problems
    assert problems[1] == "SubnetId: expected a string, got int"
    assert problems[3] == "Backup: 'tape' is not one of ami, snapshot, none"
    assert problems[-1].startswith("'Force': unknown input key (accepted keys: InstanceId, ")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("value", ["true", "false", "True"])
def test_a_quoted_boolean_is_explained(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request({"InstanceId": "i-01234567", "DryRun": value})
    assert str(refused.value) == (
        f"DryRun: expected true or false, got the string {value!r} "
        f'(JSON booleans are unquoted: write {value.lower()}, not "{value}")'
    )


def test_checks_across_fields_are_reported_with_the_others() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_request(
            {
                "InstanceId": "i-01234567",
                "HelperInstanceType": "t3.large",
                "EC2RescueInstanceType": "t3.medium",
                "PublicKey": openssh_line(),
                "KeyType": "rsa",
                "Mode": "sideways",
            }
        )
    assert [p.split(": ", 1)[0] for p in str(refused.value).split("; ")] == [
        "Mode",
        "HelperInstanceType",
        "KeyType",
    ]


def test_the_runbook_s_input_is_accepted_with_a_note_on_what_is_not_needed() -> None:
    # AWSSupport-ResetAccess's parameters, as a drop-in user passes them.
    request = parse_request(
        {
            "InstanceId": "i-0123456789abcdef0",
            "SubnetId": "CreateNewVPC",
            "EC2RescueInstanceType": "t3.small",
            "AutomationAssumeRole": "arn:aws:iam::123456789012:role/AutomationRole",
        }
    )
    assert request.helper_instance_type == "t3.small"
    assert len(request.notes) == 1
    assert request.notes[0].startswith("AutomationAssumeRole: not needed")
    assert "its own least-privilege role" in request.notes[0]
    # The runbook's own default helper type runs on Xen: its Nitro equivalent, said.
    runbook_default = parse_request(
        {"InstanceId": "i-01234567", "EC2RescueInstanceType": "t2.small"}
    )
    assert runbook_default.helper_instance_type == "t3.small"
    assert runbook_default.notes == (
        "EC2RescueInstanceType: t2.small runs on Xen, where the helper cannot tell the moved "
        "volume by its NVMe serial; the helper is a t3.small, its Nitro equivalent",
    )
    # Our own key keeps what it was given (Preflight refuses a Xen type, naming the fix).
    assert (
        parse_request(
            {"InstanceId": "i-01234567", "HelperInstanceType": "t2.small"}
        ).helper_instance_type
        == "t2.small"
    )
    # Empty, as the runbook's default, is accepted too; a value that is no role ARN is not.
    assert parse_request({"InstanceId": "i-01234567", "AutomationAssumeRole": ""}).notes
    with pytest.raises(InvalidInput, match="AutomationAssumeRole: 'admin' is not an IAM role ARN"):
        parse_request({"InstanceId": "i-01234567", "AutomationAssumeRole": "admin"})


def test_the_example_alarm_event_names_its_instance_and_alarm() -> None:
    import json
    from pathlib import Path

    event = json.loads(Path("events/alarm-event.json").read_text())
    request = parse_request(event)
    assert (request.instance_id, request.from_alarm) == ("i-0123456789abcdef0", "ResetAccess-web-1")


def test_started_by_alarm_makes_the_run_alarm_started() -> None:
    """A fleet's child started for an alarm: the circuit breaker keys on from_alarm."""
    request = parse_request(
        {"InstanceId": "i-0123456789abcdef0", "StartedByAlarm": "ResetAccess-web"}
    )
    assert request.from_alarm == "ResetAccess-web"
    assert parse_request({"InstanceId": "i-0123456789abcdef0"}).from_alarm is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, 7])
def test_started_by_alarm_must_be_an_alarm_name(name: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^StartedByAlarm: expected"):
        parse_request({"InstanceId": "i-0123456789abcdef0", "StartedByAlarm": name})
