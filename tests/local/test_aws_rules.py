"""The engine refuses what AWS refuses: each documented rule and the model's own constraints,
with AWS's error code. moto accepts every one of these requests (local/aws_rules.py,
local/aws_model.py)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.model import ShapeResolver

from local import aws_model, aws_rules

CLIENTS = {
    name: boto3.client(
        name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    for name in ("ec2", "ssm", "stepfunctions", "cloudwatch", "sns")
}
SFN_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:ResetAccess"


def refused(service: str, operation: str, **params: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        aws_rules.check(CLIENTS[service], operation, params)
    return raised.value


def accepted(service: str, operation: str, **params: Any) -> None:
    aws_rules.check(CLIENTS[service], operation, params)


def code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


# API_CreateImage: "3-128 alphanumeric characters, parentheses (()), square brackets ([]),
# spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or
# underscores(_)".
@pytest.mark.parametrize(
    "name",
    [
        "ResetAccess:i-0123456789abcdef0:20260101T000000Z",  # the backup's name until now
        "ResetAccess: Password-enabled AMI from i-0123456789abcdef0 20260101T000000Z",
        "a" * 129,
        "backup-été",
        "backup+1",
        "ba\tck",
    ],
)
def test_ami_names_outside_awss_characters_are_malformed(name: str) -> None:
    assert (
        code(refused("ec2", "CreateImage", InstanceId="i-1", Name=name))
        == "InvalidAMIName.Malformed"
    )


@pytest.mark.parametrize(
    "name",
    [
        "ResetAccess-backup-i-0123456789abcdef0-20260101T000000Z",
        "ResetAccess password-enabled i-0123456789abcdef0 20260101",
        "abc",
        "a(b)[c] ./-'@_" + "x" * 114,
    ],
)
def test_ami_names_awss_characters_are_accepted(name: str) -> None:
    accepted("ec2", "CreateImage", InstanceId="i-1", Name=name)


# API_CreateSecurityGroup: "Up to 255 characters in length. Can't start with sg-. Valid
# characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*".
@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("sg-reset", "ok"),
        ("reset-access-o'brien", "ok"),
        ("reset-é", "ok"),
        ("x" * 256, "ok"),
        ("ok", "x" * 256),
        ("ok", "tab\there"),
        ("ok", "quote'"),
    ],
)
def test_security_group_names_and_descriptions(name: str, description: str) -> None:
    error = refused("ec2", "CreateSecurityGroup", GroupName=name, Description=description)
    assert code(error) == "InvalidParameterValue"


def test_security_group_name_awss_characters_are_accepted() -> None:
    accepted(
        "ec2",
        "CreateSecurityGroup",
        GroupName="a._-:/()#,@[]+=&;{}!$* z",
        Description="ResetAccess helper: no inbound, HTTPS and HTTP out",
    )


# EC2 tag restrictions: key 1-128, value 0-256 characters, prefix aws: reserved, 50 tags.
@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([{"Key": "k" * 129, "Value": "v"}], "InvalidParameterValue"),
        ([{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
        ([{"Key": "AWS:cloudformation", "Value": "v"}], "InvalidParameterValue"),
        ([{"Key": f"k{n}", "Value": "v"} for n in range(51)], "TagLimitExceeded"),
    ],
)
def test_ec2_tags(tags: list[dict[str, str]], expected: str) -> None:
    assert code(refused("ec2", "CreateTags", Resources=["i-1"], Tags=tags)) == expected
    spec = [{"ResourceType": "snapshot", "Tags": tags}]
    assert (
        code(refused("ec2", "CreateSnapshot", VolumeId="vol-1", TagSpecifications=spec)) == expected
    )


# API_PutParameter: names of a-zA-Z0-9_.- and /, no spaces, 15 levels, 1011 characters with
# the ARN before the name; a hierarchy starts with /.
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/reset-access/i-1/pending/run+1", "ValidationException"),
        ("/reset-access/i-1/pending/run (1)", "ValidationException"),
        ("/reset-access/i-1/pending/été", "ValidationException"),
        ("reset-access/i-1", "ValidationException"),
        ("/" + "/".join(["l"] * 16), "HierarchyLevelLimitExceededException"),
        ("/" + "n" * 1000, "ValidationException"),
    ],
)
def test_parameter_names(name: str, expected: str) -> None:
    error = refused("ssm", "PutParameter", Name=name, Value="v", Type="String")
    assert code(error) == expected
    assert code(refused("ssm", "DeleteParameter", Name=name)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "/" + "/".join(["l"] * 15),
        "/reset-access/i-1/pending/local-1a2b_c.d",
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        "arn:aws:ssm:us-east-1:123456789012:parameter/reset-access/i-1/result",
        "/a/b:3",
        "/a/b:label_1",
    ],
)
def test_parameter_names_aws_accepts_for_reading(name: str) -> None:
    accepted("ssm", "GetParameter", Name=name)


# Parameter tiers: standard values up to 4 KB, advanced up to 8 KB.
@pytest.mark.parametrize(
    ("tier", "size", "fits"),
    [
        (None, 4096, True),
        (None, 4097, False),
        ("Standard", 4097, False),
        ("Advanced", 8192, True),
        ("Advanced", 8193, False),
    ],
)
def test_parameter_value_size_per_tier(tier: str | None, size: int, fits: bool) -> None:
    params: dict[str, Any] = {
        "Name": "/r/result",
        "Value": "v" * size,
        "Type": "String",
        **({"Tier": tier} if tier else {}),
    }
    if fits:
        accepted("ssm", "PutParameter", **params)
    else:
        error = refused("ssm", "PutParameter", **params)
        assert code(error) == "ValidationException"
        assert "maximum parameter value" in str(error)


# API_StartExecution: a name must not contain white space, brackets < > { } [ ], wildcards
# ? *, special characters " # % \ ^ | ~ ` $ & , ; : /, control characters; 1-80 characters.
@pytest.mark.parametrize(
    "name",
    [
        "a b",
        "a<b",
        "a{b",
        "a[b",
        "a?b",
        "a*b",
        'a"b',
        "a#b",
        "a%b",
        "a\\b",
        "a^b",
        "a|b",
        "a~b",
        "a`b",
        "a$b",
        "a&b",
        "a,b",
        "a;b",
        "a:b",
        "a/b",
        "a\x01b",
        "a\x85b",
        "x" * 81,
    ],
)
def test_execution_names_step_functions_refuses(name: str) -> None:
    error = refused("stepfunctions", "StartExecution", stateMachineArn=SFN_ARN, name=name)
    assert code(error) == "InvalidName"


def test_execution_names_step_functions_accepts() -> None:
    accepted(
        "stepfunctions",
        "StartExecution",
        stateMachineArn=SFN_ARN,
        name="reset+1=(web)@home!'été_-.",
    )


def test_alarm_names_with_control_characters() -> None:
    error = refused(
        "cloudwatch",
        "PutMetricAlarm",
        AlarmName="cpu\nhigh",
        EvaluationPeriods=1,
        ComparisonOperator="GreaterThanThreshold",
        Threshold=1.0,
    )
    assert code(error) == "ValidationError"


TOPIC = "arn:aws:sns:us-east-1:123456789012:ResetAccess-Notifications"


@pytest.mark.parametrize("subject", ["x" * 100, "two\nlines", "tab\there", ""])
def test_sns_subjects_aws_refuses(subject: str) -> None:
    """Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and
    less than 100 characters long" (SNS API Reference, Publish)."""
    error = refused("sns", "Publish", TopicArn=TOPIC, Message="m", Subject=subject)
    assert code(error) == "InvalidParameter"


def test_sns_accepts_a_99_character_subject_and_a_256_kb_message() -> None:
    accepted("sns", "Publish", TopicArn=TOPIC, Message="m" * 262_144, Subject="é" * 99)
    error = refused("sns", "Publish", TopicArn=TOPIC, Message="m" * 262_145)
    assert code(error) == "InvalidParameter"


# The model's own max/pattern/enum, which botocore leaves to the service (it checks only min).
@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "ssm",
            "SendCommand",
            {"DocumentName": "ResetAccess-Rescue", "InstanceIds": ["i-1"], "Comment": "c" * 101},
            "ValidationException",
        ),
        (
            "ssm",
            "SendCommand",
            {"DocumentName": "Reset Access", "InstanceIds": ["i-1"]},
            "ValidationException",
        ),
        (
            "ssm",
            "SendCommand",
            {
                "DocumentName": "ResetAccess-Rescue",
                "InstanceIds": ["i-1"],
                "TimeoutSeconds": 2592001,
            },
            "ValidationException",
        ),
        (
            "ssm",
            "PutParameter",
            {"Name": "/a", "Value": "v", "Type": "Secret"},
            "ValidationException",
        ),
        (
            "ssm",
            "PutParameter",
            {"Name": "/a", "Value": "v", "Type": "String", "Description": "d" * 1025},
            "ValidationException",
        ),
        (
            "ec2",
            "CreateImage",
            {"InstanceId": "i-1", "Name": "abc", "Description": "d" * 256},
            "InvalidParameterValue",
        ),
        (
            "cloudwatch",
            "PutMetricAlarm",
            {
                "AlarmName": "a" * 256,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold",
            },
            "ValidationError",
        ),
    ],
)
def test_model_constraints_moto_ignores(
    service: str, operation: str, params: dict[str, Any], expected: str
) -> None:
    error = refused(service, operation, **params)
    assert code(error) == expected
    assert "failed to satisfy constraint" in str(error)


def test_a_refused_secret_is_not_in_the_message() -> None:
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----" + "s" * 5000
    error = refused("ssm", "PutParameter", Name="/a", Value=secret, Type="SecureString")
    assert "BEGIN OPENSSH" not in str(error) and "sss" not in str(error)
    error = refused(
        "ssm",
        "SendCommand",
        DocumentName="ResetAccess-Rescue",
        InstanceIds=["i-1"],
        Parameters={"k": ["v" * 70_000]},
    )
    assert "vvv" not in str(error)


def test_every_documented_rule_cites_aws() -> None:
    assert aws_rules.RULES
    for rule in aws_rules.RULES:
        assert rule.doc.startswith("https://docs.aws.amazon.com/"), rule


def test_the_model_constraints_are_read_for_every_operation() -> None:
    model = CLIENTS["ssm"].meta.service_model.operation_model("SendCommand")
    found = aws_model.model_constraints(model)
    assert ("Comment", "max") in found and ("DocumentARN", "pattern") in found


# Every kind of shape the generic check knows, on a model of our own: each limit, the paths
# AWS names members by, values of the wrong type left alone, and a sensitive value not shown.
MODEL = ShapeResolver(
    {
        "Top": {
            "type": "structure",
            "members": {
                "Name": {"shape": "Name"},
                "Count": {"shape": "Count"},
                "Big": {"shape": "Big"},
                "Data": {"shape": "Data"},
                "Ids": {"shape": "Ids"},
                "Tags": {"shape": "Tags"},
                "Secret": {"shape": "Secret"},
                "Inner": {"shape": "Top"},
            },
        },
        "Name": {"type": "string", "max": 3, "enum": ["ab", "abcd"], "pattern": "^a"},
        "Count": {"type": "integer", "max": 5},
        "Big": {"type": "long", "max": 5},
        "Data": {"type": "blob", "max": 2},
        "Ids": {"type": "list", "member": {"shape": "Name"}, "max": 1},
        "Tags": {"type": "map", "key": {"shape": "Name"}, "value": {"shape": "Count"}, "max": 1},
        "Secret": {"type": "string", "max": 2, "sensitive": True},
    }
)
FAILED = "failed to satisfy constraint: Member must"
ENUM_AND_PATTERN = (
    f"{FAILED} satisfy enum value set: [ab, abcd]",
    f"{FAILED} satisfy regular expression pattern: ^a",
)


def test_model_violations_of_every_shape_kind() -> None:
    value = {
        "Name": "bcde",
        "Count": 6,
        "Big": 7,
        "Data": b"xyz",
        "Ids": ["ab", "zz"],
        "Tags": {"ab": 1, "q": 9},
        "Secret": "hunter2",
        "Unknown": "x",
        "Inner": {"Name": "abcd", "Count": "6", "Data": "xyz", "Ids": "ab", "Tags": []},
    }
    found = list(aws_model.violations(MODEL.get_shape_by_name("Top"), value, ""))
    assert found == [
        f"Value 'bcde' at 'name' {FAILED} have length less than or equal to 3",
        *(f"Value 'bcde' at 'name' {end}" for end in ENUM_AND_PATTERN),
        f"Value '6' at 'count' {FAILED} have value less than or equal to 5",
        f"Value '7' at 'big' {FAILED} have value less than or equal to 5",
        f"Value 'b'xyz'' at 'data' {FAILED} have length less than or equal to 2",
        f"Value '['ab', 'zz']' at 'ids' {FAILED} have length less than or equal to 1",
        *(f"Value 'zz' at 'ids.2.member' {end}" for end in ENUM_AND_PATTERN),
        f"Value '{{'ab': 1, 'q': 9}}' at 'tags' {FAILED} have length less than or equal to 1",
        *(f"Value 'q' at 'tags.key' {end}" for end in ENUM_AND_PATTERN),
        f"Value '9' at 'tags.q' {FAILED} have value less than or equal to 5",
        f"at 'secret' {FAILED} have length less than or equal to 2",
        f"Value 'abcd' at 'inner.name' {FAILED} have length less than or equal to 3",
        f"Value 'xyz' at 'inner.data' {FAILED} have length less than or equal to 2",
    ]
    within = {
        "Name": "ab",
        "Count": 5,
        "Big": 5,
        "Data": b"xy",
        "Ids": ["ab"],
        "Tags": {"ab": 5},
        "Secret": "hi",
    }
    assert list(aws_model.violations(MODEL.get_shape_by_name("Top"), within, "")) == []


def test_a_region_holds_five_vpcs_and_five_internet_gateways() -> None:
    """Amazon VPC quotas (https://docs.aws.amazon.com/general/latest/gr/vpc-service.html):
    VPCs per Region 5, internet gateways per Region 5, by default; moto has no limit."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from local import aws_rules
    from local.emulator import REGION

    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        made = 0
        with pytest.raises(ClientError, match="VpcLimitExceeded"):
            for _ in range(10):
                aws_rules.check(ec2, "CreateVpc", {"CidrBlock": "10.0.0.0/16"})
                ec2.create_vpc(CidrBlock="10.0.0.0/16")
                made += 1
        assert made == 4  # the default VPC is the fifth
        for _ in range(5):
            aws_rules.check(ec2, "CreateInternetGateway", {})
            ec2.create_internet_gateway()
        with pytest.raises(ClientError, match="InternetGatewayLimitExceeded"):
            aws_rules.check(ec2, "CreateInternetGateway", {})


def test_a_role_that_does_not_exist_cannot_be_assumed() -> None:
    """STS AssumeRole (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html):
    the role must exist in its account and trust the caller, else AccessDenied; moto 5.2.5 hands
    out credentials for any role ARN ("the role does not need to exist")."""
    from moto import mock_aws

    member = "arn:aws:iam::111122223333:role/ResetAccess-FleetMember-eu-west-1"
    with mock_aws():
        sts = boto3.client("sts", region_name="us-east-1")
        with pytest.raises(ClientError, match="AccessDenied") as denied:
            aws_rules.check(sts, "AssumeRole", {"RoleArn": member, "RoleSessionName": "fleet"})
        assert member in str(denied.value)
        # Made in that account (as a role there), it may be assumed.
        there = sts.assume_role(
            RoleArn="arn:aws:iam::111122223333:role/Setup", RoleSessionName="setup"
        )
        credentials = there["Credentials"]
        boto3.client(
            "iam",
            region_name="us-east-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        ).create_role(RoleName="ResetAccess-FleetMember-eu-west-1", AssumeRolePolicyDocument="{}")
        aws_rules.check(sts, "AssumeRole", {"RoleArn": member, "RoleSessionName": "fleet"})
