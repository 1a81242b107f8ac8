"""The reset-access command against a moto account: what it leaves on disk and in AWS."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cli.reset_access import (
    CliError,
    arm_alarm,
    build_input,
    follow,
    get_key,
    main,
    parser,
    state_machine_arn,
)
from cli.reset_access import start as start_execution

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def test_input_carries_only_what_was_set(tmp_path: Path) -> None:
    pub = tmp_path / "me.pub"
    pub.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJlc2V0YWNjZXNz me@laptop\n")
    args = parser().parse_args(
        [
            "start",
            "i-0123456789abcdef0",
            "--mode",
            "offline",
            "--public-key-file",
            str(pub),
            "--dry-run",
        ]
    )
    assert build_input(args) == {
        "InstanceId": "i-0123456789abcdef0",
        "Mode": "offline",
        "DryRun": True,
        "PublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJlc2V0YWNjZXNz me@laptop",
    }


def test_get_key_writes_a_private_file_and_prints_nothing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not a key, only its shape: no real key material is ever committed.
    label = "OPENSSH PRIVATE KEY"
    secret = f"-----BEGIN {label}-----\nbm90LWEtcmVhbC1rZXk=\n-----END {label}-----"
    boto3.client("ssm").put_parameter(
        Name="/ec2rl/openssh/i-0123456789abcdef0/key", Value=secret, Type="SecureString"
    )
    out = tmp_path / "key.pem"
    assert main(["get-key", "i-0123456789abcdef0", "--out", str(out)]) == 0
    assert out.read_text() == secret + "\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "bm90LWEtcmVhbC1rZXk" not in capsys.readouterr().out
    with pytest.raises(CliError, match="exists"):
        get_key(boto3.client("ssm"), "i-0123456789abcdef0", out)


def test_get_key_without_a_reset_says_so(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no reset has finished"):
        get_key(boto3.client("ssm"), "i-0123456789abcdef0", tmp_path / "k.pem")
    assert not (tmp_path / "k.pem").exists()


def test_arm_alarm_creates_the_alarm_the_rule_listens_to_and_opts_in() -> None:
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    name = arm_alarm(boto3.client("cloudwatch"), ec2, instance_id, "ResetAccess-")
    alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert name.startswith("ResetAccess-")
    assert alarm["MetricName"] == "StatusCheckFailed_Instance"
    assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": instance_id}]
    tags = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "Tags"
    ]
    assert {"Key": "ResetAccess:AutoRecover", "Value": "true"} in tags


def test_missing_stack_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="deploy it with"):
        state_machine_arn(boto3.client("cloudformation"), "ResetAccess")


def test_start_and_follow_report_the_execution() -> None:
    sfn = boto3.client("stepfunctions")
    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    machine = sfn.create_state_machine(
        name="ResetAccess",
        roleArn=role,
        definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        ),
    )["stateMachineArn"]
    lines: list[str] = []
    arn = start_execution(sfn, machine, {"InstanceId": "i-0123456789abcdef0"})
    finished = follow(sfn, arn, lines.append, poll_seconds=0, sleep=lambda s: None)
    assert finished["status"] == "SUCCEEDED"
    assert any(line.endswith("Done") for line in lines)
    assert json.loads(finished["output"]) == {"InstanceId": "i-0123456789abcdef0"}
