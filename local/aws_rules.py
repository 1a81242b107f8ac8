"""AWS's name, format and size rules that moto does not enforce, checked on every local call.

The product rule: the local engine is at least as strict as AWS. moto accepts what AWS refuses
(an AMI name with a colon, a 5 KB standard parameter, a security group name with a quote), so
a green local run proved nothing about a real account. Two kinds of checks run before moto sees
a request:

- generic: every `max`, `pattern` and `enum` botocore's service model states for a member of
  the operation's input (botocore itself checks only `min` and types), in local/aws_model.py;
- documented: the rules AWS states only in its documentation text, one `Rule` each, with the
  page it comes from.

A refused request raises the client's ClientError with AWS's error code, as AWS would answer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# botocore's patterns are Java-style (\p{L}...), which the stdlib `re` cannot compile.
import regex  # type: ignore[import-untyped]
from botocore.model import OperationModel

from local.aws_model import Refusal, model_refusal

# SSM: "Standard parameter value 4 KB, advanced 8 KB" (user guide, parameter tiers).
PARAMETER_VALUE_LIMITS = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}

Check = Callable[[dict[str, Any]], Refusal | None]


@dataclass(frozen=True)
class Rule:
    """One documented rule: which calls it applies to, what it checks, where AWS says so."""

    service: str  # botocore service name
    operations: tuple[str, ...]
    what: str
    doc: str
    check: Check


# -- documented rules ------------------------------------------------------------------------
AMI_NAME = regex.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}")
# EC2 security group name and description, VPC: "a-z, A-Z, 0-9, spaces, and
# ._-:/()#,@[]+=&;{}!$*".
SECURITY_GROUP_TEXT = regex.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
PARAMETER_NAME = regex.compile(r"[A-Za-z0-9_.\-/]+")
PARAMETER_SELECTOR = regex.compile(r":[A-Za-z0-9_.\-]{1,100}$")
# Step Functions execution and state machine names: what a name "must not contain".
EXECUTION_NAME_REFUSED = regex.compile(
    r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]"
)
ALARM_NAME_REFUSED = regex.compile(r"[\x00-\x1f\x7f]")


def _ami_name(params: dict[str, Any]) -> Refusal | None:
    name = params.get("Name")
    if isinstance(name, str) and not AMI_NAME.fullmatch(name):
        return Refusal(
            "InvalidAMIName.Malformed",
            f"AMI names must be between 3 and 128 characters long, and may contain "
            f"letters, numbers, '(', ')', '.', '-', '/', '[', ']', ' ', \"'\", '@' "
            f"and '_' (got {name!r})",
        )
    return None


def _security_group(params: dict[str, Any]) -> Refusal | None:
    name, description = params.get("GroupName", ""), params.get("Description", "")
    for field, value in (("GroupName", name), ("GroupDescription", description)):
        if not SECURITY_GROUP_TEXT.fullmatch(value):
            return Refusal(
                "InvalidParameterValue",
                f"Value ({value}) for parameter {field} is invalid. Up to 255 "
                "characters of a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*",
            )
    if name.lower().startswith("sg-"):
        return Refusal(
            "InvalidParameterValue",
            f"Value ({name}) for parameter GroupName is invalid. Group names may "
            "not be in the format sg-*.",
        )
    return None


def _ec2_tags(params: dict[str, Any]) -> Refusal | None:
    tag_lists = [spec.get("Tags", []) for spec in params.get("TagSpecifications", [])]
    if "Tags" in params and "Resources" in params:  # CreateTags
        tag_lists.append(params["Tags"])
    for tags in tag_lists:
        if len(tags) > 50:
            return Refusal("TagLimitExceeded", "a resource can have at most 50 tags")
        for tag in tags:
            key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
            if not 1 <= len(key) <= 128:
                return Refusal(
                    "InvalidParameterValue", f"Tag key must be 1 to 128 characters (got {len(key)})"
                )
            if len(value) > 256:
                return Refusal(
                    "InvalidParameterValue",
                    f"Tag value exceeds the maximum length of 256 characters (tag {key})",
                )
            if key.lower().startswith("aws:"):
                return Refusal(
                    "InvalidParameterValue",
                    "Tag keys starting with 'aws:' are reserved for internal use",
                )
    return None


def parameter_name_refusal(name: str, *, reading: bool) -> Refusal | None:
    """SSM's naming constraints; a read may name an ARN and a `:version`/`:label` selector."""
    if reading:
        if name.startswith("arn:"):
            name = name.split(":parameter", 1)[-1]
        name = PARAMETER_SELECTOR.sub("", name)
    arn_prefix = "arn:aws:ssm:us-east-1:123456789012:parameter"
    if len(arn_prefix) + len(name if name.startswith("/") else "/" + name) > 1011:
        return Refusal(
            "ValidationException",
            "The maximum length for a parameter name is 1011 characters, including "
            "the ARN that precedes it",
        )
    if not PARAMETER_NAME.fullmatch(name):
        return Refusal(
            "ValidationException",
            'Parameter name: can\'t be prefixed with "aws" or "ssm" '
            "(case-insensitive). If formed as a path, it can consist of sub-paths "
            "divided by slash symbol; each sub-path can be formed as a mix of "
            "letters, numbers and the following 3 symbols .-_",
        )
    if "/" in name and not name.startswith("/"):
        return Refusal(
            "ValidationException",
            f"Parameter name must be a fully qualified name (a hierarchy starts with /): {name}",
        )
    if name.strip("/").count("/") + 1 > 15:
        return Refusal(
            "HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels"
        )
    return None


def _parameter_names(params: dict[str, Any], reading: bool) -> Refusal | None:
    names = [params[k] for k in ("Name", "Path") if isinstance(params.get(k), str)]
    names += [n for n in params.get("Names", []) if isinstance(n, str)]
    for name in names:
        refusal = parameter_name_refusal(name, reading=reading)
        if refusal:
            return refusal
    return None


def _parameter_value(params: dict[str, Any]) -> Refusal | None:
    tier = str(params.get("Tier") or "Standard")
    size = len(str(params.get("Value", "")).encode())
    limit = PARAMETER_VALUE_LIMITS.get(tier, 4096)
    if size > limit:
        return Refusal(
            "ValidationException",
            f"{tier} tier parameters support a maximum parameter value of {limit} "
            f"characters (got {size} bytes). To create a larger parameter value, "
            "upgrade the parameter to use the advanced-parameter tier.",
        )
    return None


def _execution_name(params: dict[str, Any]) -> Refusal | None:
    name = params.get("name")
    if isinstance(name, str) and (not 1 <= len(name) <= 80 or EXECUTION_NAME_REFUSED.search(name)):
        return Refusal("InvalidName", f"Invalid Name: '{name}'")
    return None


def _alarm_name(params: dict[str, Any]) -> Refusal | None:
    name = params.get("AlarmName")
    if isinstance(name, str) and ALARM_NAME_REFUSED.search(name):
        return Refusal("ValidationError", "AlarmName can't contain ASCII control characters")
    return None


SNS_SUBJECT_REFUSED = regex.compile(r"[\x00-\x1f\x7f]")
SNS_MESSAGE_BYTES = 262_144


def _sns_publish(params: dict[str, Any]) -> Refusal | None:
    subject = params.get("Subject")
    if isinstance(subject, str) and (
        not 1 <= len(subject) < 100 or SNS_SUBJECT_REFUSED.search(subject)
    ):
        return Refusal(
            "InvalidParameter",
            "Invalid parameter: Subject must be UTF-8 text with no line breaks or control "
            "characters, and less than 100 characters long",
        )
    message = params.get("Message")
    if isinstance(message, str) and len(message.encode()) > SNS_MESSAGE_BYTES:
        return Refusal("InvalidParameter", "Invalid parameter: Message too long")
    return None


def _send_command_parameters(params: dict[str, Any]) -> Refusal | None:
    size = len(json.dumps(params.get("Parameters") or {}).encode())
    if size > 65_536:
        return Refusal(
            "ValidationException",
            f"the command's parameters are {size} bytes; a Command document with "
            "its runtime parameter values may be at most 64 KB",
        )
    return None


# Amazon VPC quotas, defaults (adjustable): 5 VPCs and 5 internet gateways per Region; a
# CreateNewVPC reset makes one of each, so a fleet of them meets these first.
VPCS_PER_REGION = 5
INTERNET_GATEWAYS_PER_REGION = 5


def _region_quota(kind: str, quota: int, code: str, what: str) -> Check:
    """A count quota of the calling Region, read from moto's EC2 backend of that Region."""

    def check(params: dict[str, Any]) -> Refusal | None:
        from local import emulator

        if len(getattr(emulator.ec2_backend(), kind)) < quota:
            return None
        return Refusal(code, f"The maximum number of {what} has been reached.")

    return check


def _assumed_role_exists(params: dict[str, Any]) -> Refusal | None:
    """moto's AssumeRole hands out credentials for any role ARN, also one that does not exist;
    AWS refuses a role that is not there (a member stack not deployed) with AccessDenied."""
    from moto.iam.models import iam_backends

    arn = str(params.get("RoleArn", ""))
    parts = arn.split(":")
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/"):
        name = parts[5].rsplit("/", 1)[-1]
        roles = iam_backends[parts[4]][parts[1] or "aws"].roles.values()
        if any(role.name == name for role in roles):
            return None
    return Refusal("AccessDenied", f"Not authorized to perform sts:AssumeRole on resource: {arn}")


SSM_NAMED_READS = ("GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory")
SSM_NAMED_WRITES = ("PutParameter", "DeleteParameter", "DeleteParameters", "LabelParameterVersion")
RULES: tuple[Rule, ...] = (
    Rule(
        "ec2",
        ("CreateImage", "CopyImage", "RegisterImage"),
        "AMI name characters, 3-128",
        "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html",
        _ami_name,
    ),
    Rule(
        "ec2",
        ("CreateSecurityGroup",),
        "security group name/description characters, 255, no sg- prefix",
        "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html",
        _security_group,
    ),
    Rule(
        "ec2",
        (
            "CreateTags",
            "RunInstances",
            "CreateImage",
            "CreateSnapshot",
            "CreateVolume",
            "CreateSecurityGroup",
            "CreateVpc",
            "CreateSubnet",
            "CreateInternetGateway",
            "CreateRouteTable",
            "CreateKeyPair",
            "ImportKeyPair",
        ),
        "tag key 1-128, value 256, no aws: prefix, 50 tags",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions",
        _ec2_tags,
    ),
    Rule(
        "ec2",
        ("CreateVpc",),
        "5 VPCs per Region (default quota)",
        "https://docs.aws.amazon.com/general/latest/gr/vpc-service.html",
        _region_quota("vpcs", VPCS_PER_REGION, "VpcLimitExceeded", "VPCs"),
    ),
    Rule(
        "ec2",
        ("CreateInternetGateway",),
        "5 internet gateways per Region (default quota)",
        "https://docs.aws.amazon.com/general/latest/gr/vpc-service.html",
        _region_quota(
            "internet_gateways",
            INTERNET_GATEWAYS_PER_REGION,
            "InternetGatewayLimitExceeded",
            "internet gateways",
        ),
    ),
    Rule(
        "ssm",
        SSM_NAMED_WRITES,
        "parameter name characters, leading /, 15 levels, 1011 characters",
        "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html",
        functools.partial(_parameter_names, reading=False),
    ),
    Rule(
        "ssm",
        SSM_NAMED_READS,
        "parameter name (or ARN and selector) as above",
        "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html",
        functools.partial(_parameter_names, reading=True),
    ),
    Rule(
        "ssm",
        ("PutParameter",),
        "parameter value 4 KB standard, 8 KB advanced",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "parameter-store-advanced-parameters.html",
        _parameter_value,
    ),
    Rule(
        "ssm",
        ("SendCommand",),
        "Command document with its parameter values <= 64 KB",
        "https://docs.aws.amazon.com/general/latest/gr/ssm.html",
        _send_command_parameters,
    ),
    Rule(
        "stepfunctions",
        ("StartExecution", "StartSyncExecution"),
        "execution name 1-80, no whitespace, brackets, wildcards, specials, controls",
        "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html",
        _execution_name,
    ),
    Rule(
        "sns",
        ("Publish",),
        "subject under 100 characters, no line breaks or controls; message 256 KB",
        "https://docs.aws.amazon.com/sns/latest/api/API_Publish.html",
        _sns_publish,
    ),
    Rule(
        "sts",
        ("AssumeRole",),
        "the role exists in its account",
        "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html",
        _assumed_role_exists,
    ),
    Rule(
        "cloudwatch",
        ("PutMetricAlarm", "PutCompositeAlarm"),
        "alarm name: no controls",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        _alarm_name,
    ),
)
_RULES_BY_CALL: dict[tuple[str, str], list[Rule]] = {}
for _rule in RULES:
    for _operation in _rule.operations:
        _RULES_BY_CALL.setdefault((_rule.service, _operation), []).append(_rule)


# -- the check on the engine's call path -----------------------------------------------------
def refusal(
    service: str,
    operation: str,
    params: dict[str, Any],
    *,
    operation_model: OperationModel | None = None,
    protocol: str = "json",
) -> Refusal | None:
    for rule in _RULES_BY_CALL.get((service, operation), []):
        found = rule.check(params)
        if found:
            return found
    if operation_model is not None:
        return model_refusal(operation_model, protocol, params)
    return None


def check(client: Any, operation: str, params: dict[str, Any]) -> None:
    """Raise what AWS answers when this request breaks one of its rules."""
    model = client.meta.service_model
    found = refusal(
        model.service_name,
        operation,
        params,
        operation_model=model.operation_model(operation),
        protocol=model.protocol,
    )
    if found is None:
        return
    response = {
        "Error": {"Code": found.code, "Message": found.message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    error_class = client.exceptions.from_code(found.code)
    raise error_class(response, operation)


__all__ = [
    "RULES",
    "Rule",
    "check",
    "parameter_name_refusal",
    "refusal",
]
