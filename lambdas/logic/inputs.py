"""The execution input: what is accepted, with defaults, and a refusal that names every field
that is wrong.

The input is one pydantic model read through Powertools' parser (the layer ships both); the
alarm event that EventBridge hands over is read through Powertools' event source data classes.
To accept a new key, add a field to ExecutionInput (its alias is the key) and to Request; a new
value of Mode goes into MODES.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.cloud_watch_alarm_event import (
    CloudWatchAlarmData,
)
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import ErrorDetails, PydanticCustomError

from lambdas.errors import InvalidInput
from lambdas.logic.helper_type import NITRO_FAMILY, nitro_equivalent
from lambdas.logic.rescue_contract import (
    MAX_KEY_BASE64,
    MAX_KEY_COMMENT,
    PUBLIC_KEY_LINE,
    PUBLIC_KEY_TYPES,
)

INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,15}$")
# AWSSupport-ResetAccess's AutomationAssumeRole: an IAM role's ARN, or empty.
ROLE_ARN = re.compile(r"^(?:arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w+=/,.@-]{1,512})?$")
# The rescue document's PublicKey pattern, so what passes here passes there.
KEY_LINE = re.compile(PUBLIC_KEY_LINE)
SUBNET_CHOICES = ("CreateNewVPC", "SelectedInstanceSubnet")
MODES = ("auto", "online", "offline", "replace-root")
KEY_TYPES = ("rsa", "ed25519")
BACKUPS = ("ami", "snapshot", "none")
DEFAULT_HELPER_TYPE = "t3.small"
# Runbook parameters accepted for drop-in use but not needed here, and why (said in the plan).
NOT_NEEDED = {
    "AutomationAssumeRole": (
        "AutomationAssumeRole: not needed, and not used: the stack gives each step of the "
        "workflow its own least-privilege role, so no role is assumed for you"
    ),
}


@dataclass(frozen=True)
class Request:
    instance_id: str
    subnet: str = "CreateNewVPC"
    helper_instance_type: str = DEFAULT_HELPER_TYPE
    mode: str = "auto"
    public_key: str | None = None
    key_type: str = "rsa"
    backup: str = "ami"
    create_password_enabled_ami: bool = True
    dry_run: bool = False
    from_alarm: str | None = None  # the alarm's name when an alarm event started the run
    # What the run was given but does not use, and why: Preflight puts these in the plan.
    notes: tuple[str, ...] = ()


def _clip(value: str, limit: int = 80) -> str:
    """Keep error messages short whatever the caller sent."""
    return value if len(value) <= limit else value[:limit] + "..."


def _refuse(reason: str) -> PydanticCustomError:
    # Our own text, whole: pydantic adds no "Value error, " prefix to a custom error.
    return PydanticCustomError("reset_access", reason)


def _instance_id(value: str) -> str:
    if not INSTANCE_ID.match(value):
        raise _refuse(
            f"{_clip(value)!r} is not an instance ID ('i-' and 8 or 17 lowercase hex digits)"
        )
    return value


def _subnet(value: str) -> str:
    if value not in SUBNET_CHOICES and not SUBNET_ID.match(value):
        raise _refuse(
            f"{_clip(value)!r} is neither CreateNewVPC, SelectedInstanceSubnet nor a subnet ID "
            "('subnet-' and 8 or 17 hex digits)"
        )
    return value


def _instance_type(value: str) -> str:
    if not INSTANCE_TYPE.match(value):
        raise _refuse(f"{_clip(value)!r} is not an instance type like t3.small")
    return value


def _role_arn(value: str) -> str:
    if not ROLE_ARN.match(value):
        raise _refuse(f"{_clip(value)!r} is not an IAM role ARN (arn:aws:iam::<account>:role/...)")
    return value


def _alarm_name(value: str) -> str:
    # CloudWatch's AlarmName: 1 to 255 characters.
    if not 1 <= len(value) <= 255 or not value.strip():
        raise _refuse("expected the alarm's name (1 to 255 characters)")
    return value


def one_of(allowed: tuple[str, ...]) -> AfterValidator:
    """A value from `allowed`, read when validating (so a value added to the tuple counts)."""

    def check(value: str) -> str:
        if value not in allowed:
            raise _refuse(f"{_clip(value)!r} is not one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def _public_key(value: str) -> str:
    line = value.strip()
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] not in PUBLIC_KEY_TYPES:
        raise _refuse(
            "expected one OpenSSH public key line such as 'ssh-ed25519 AAAA... comment' "
            "(the content of a .pub file)"
        )
    key_type, blob = parts[0], parts[1]
    if len(blob.rstrip("=")) > MAX_KEY_BASE64:
        raise _refuse(
            f"the key data is {len(blob)} characters; OpenSSH loads no key larger than a "
            f"16384-bit RSA key ({MAX_KEY_BASE64} characters)"
        )
    try:
        decoded = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", decoded[:4])
        embedded = decoded[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise _refuse("the key data is not valid base64 of an SSH key") from None
    if embedded != key_type:
        raise _refuse(f"the key data is a {embedded!r} key, not {key_type!r}")
    if len(parts) == 3 and not KEY_LINE.fullmatch(f"{key_type} AAAAAAAAAAAAAAAA {parts[2]}"):
        raise _refuse(
            "the comment may hold only letters, digits, spaces and @._+=:,/- "
            f"(at most {MAX_KEY_COMMENT} characters, not starting with a space)"
        )
    if not KEY_LINE.fullmatch(line):
        raise _refuse("expected '<type> <base64 key data> [comment]' with single spaces")
    return line


def _not_null(value: Any) -> Any:
    # An optional key may be left out, but null is no value for it.
    if value is None:
        raise _refuse("expected a string, got NoneType")
    return value


# Keys that may be left out (None then) but, when given, are a string that passes its check.
NOT_NULL = BeforeValidator(_not_null)
InstanceType = Annotated[Annotated[str, AfterValidator(_instance_type)] | None, NOT_NULL]
PublicKey = Annotated[Annotated[str, AfterValidator(_public_key)] | None, NOT_NULL]
KeyType = Annotated[Annotated[str, one_of(KEY_TYPES)] | None, NOT_NULL]
RoleArn = Annotated[Annotated[str, AfterValidator(_role_arn)] | None, NOT_NULL]
AlarmName = Annotated[Annotated[str, AfterValidator(_alarm_name)] | None, NOT_NULL]


class ExecutionInput(BaseModel):
    """The execution input as the README's table documents it; each alias is the JSON key."""

    # strict: "true" is not true, 1 is not "1"; extra="forbid": a typo never means a default.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, validate_by_name=False)

    instance_id: Annotated[str, AfterValidator(_instance_id)] = Field(alias="InstanceId")
    subnet: Annotated[str, AfterValidator(_subnet)] = Field("CreateNewVPC", alias="SubnetId")
    helper_instance_type: InstanceType = Field(None, alias="HelperInstanceType")
    # AWSSupport-ResetAccess's name for the same thing.
    rescue_instance_type: InstanceType = Field(None, alias="EC2RescueInstanceType")
    mode: Annotated[str, one_of(MODES)] = Field("auto", alias="Mode")
    public_key: PublicKey = Field(None, alias="PublicKey")
    key_type: KeyType = Field(None, alias="KeyType")
    backup: Annotated[str, one_of(BACKUPS)] = Field("ami", alias="Backup")
    create_password_enabled_ami: bool = Field(True, alias="CreatePasswordEnabledAmi")
    dry_run: bool = Field(False, alias="DryRun")
    automation_assume_role: RoleArn = Field(None, alias="AutomationAssumeRole")
    # Set by a workflow that starts a reset for an alarm (the fleet's children): the run is then
    # alarm-started, under the circuit breaker, as if the alarm's event had started it.
    started_by_alarm: AlarmName = Field(None, alias="StartedByAlarm")


KNOWN_KEYS = tuple(str(field.alias) for field in ExecutionInput.model_fields.values())


def parse_request(raw: Any) -> Request:
    """Validate the execution input (or a CloudWatch alarm event) before any AWS call; a
    refusal names every field that is wrong, each with why."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            f'input: expected a JSON object like {{"InstanceId": "i-0123456789abcdef0"}}, '
            f"got {type(raw).__name__}"
        )
    if raw.get("source") == "aws.cloudwatch" or "detail-type" in raw:
        return _from_alarm_event(raw)
    problems = _across_fields(raw)
    try:
        given = parse(event=raw, model=ExecutionInput)
    except ValidationError as invalid:
        problems = [_problem(error) for error in invalid.errors()] + problems
        unknown = any(error["type"] == "extra_forbidden" for error in invalid.errors())
        raise InvalidInput(_message(problems, unknown)) from None
    if problems:
        raise InvalidInput(_message(problems, unknown=False))
    helper_type, helper_notes = _helper_type(given)
    return Request(
        instance_id=given.instance_id,
        subnet=given.subnet,
        helper_instance_type=helper_type,
        mode=given.mode,
        public_key=given.public_key,
        key_type=given.key_type or "rsa",
        backup=given.backup,
        create_password_enabled_ami=given.create_password_enabled_ami,
        dry_run=given.dry_run,
        from_alarm=given.started_by_alarm,
        notes=(*(note for key, note in NOT_NEEDED.items() if key in raw), *helper_notes),
    )


def _helper_type(given: ExecutionInput) -> tuple[str, tuple[str, ...]]:
    """The helper's type, and a note when the runbook's Xen type (its default is t2.small) is
    swapped for its Nitro equivalent, so that the runbook's input works as is."""
    if given.helper_instance_type or not given.rescue_instance_type:
        return given.helper_instance_type or DEFAULT_HELPER_TYPE, ()
    asked = given.rescue_instance_type
    if asked.partition(".")[0] not in NITRO_FAMILY:
        return asked, ()
    used = nitro_equivalent(asked)
    return used, (
        f"EC2RescueInstanceType: {asked} runs on Xen, where the helper cannot tell the moved "
        f"volume by its NVMe serial; the helper is a {used}, its Nitro equivalent",
    )


def _across_fields(raw: dict[str, Any]) -> list[str]:
    """What no single field shows: two names for one setting, a key type with a given key."""
    problems = []
    helper, rescue = raw.get("HelperInstanceType"), raw.get("EC2RescueInstanceType")
    if isinstance(helper, str) and isinstance(rescue, str) and helper != rescue:
        problems.append(
            "HelperInstanceType: differs from its alias EC2RescueInstanceType: give one"
        )
    if "PublicKey" in raw and "KeyType" in raw:
        problems.append("KeyType: applies to a generated key only, so omit it with PublicKey")
    return problems


def _problem(error: ErrorDetails) -> str:
    """One validation error as `Field: what is wrong`, in the words of the README's table."""
    field = ".".join(str(part) for part in error["loc"]) or "input"
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        # Quoted: a key of spaces or control characters must still be visible.
        return f"{_clip(repr(field))}: unknown input key"
    if kind == "missing":
        example = ' e.g. "i-0123456789abcdef0"' if field == "InstanceId" else ""
        return f"{field}: required,{example}" if example else f"{field}: required"
    if kind == "bool_type":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return (
                f"{field}: expected true or false, got the string {value!r} "
                f'(JSON booleans are unquoted: write {value.lower()}, not "{value}")'
            )
        return f"{field}: expected true or false, got {_clip(repr(value))}"
    if kind == "string_type":
        return f"{field}: expected a string, got {type(value).__name__}"
    return f"{field}: {error['msg']}"


def _message(problems: list[str], unknown: bool) -> str:
    text = "; ".join(problems)
    if unknown:
        text += f" (accepted keys: {', '.join(KNOWN_KEYS)})"
    return text


def _from_alarm_event(raw: dict[str, Any]) -> Request:
    event = EventBridgeEvent(raw)
    if event.source != "aws.cloudwatch" or event.detail_type != "CloudWatch Alarm State Change":
        raise InvalidInput(
            "detail-type: only CloudWatch Alarm State Change events from aws.cloudwatch "
            "start a reset"
        )
    if not isinstance(raw.get("detail"), dict):
        raise InvalidInput("detail: the alarm event has no detail object")
    # EventBridge's detail has the shape of the alarm data a Lambda alarm action receives.
    alarm = CloudWatchAlarmData(event.detail)
    state = alarm.get("state")
    if not isinstance(state, dict) or alarm.state.value != "ALARM":
        raise InvalidInput("detail.state.value: the alarm is not in ALARM; nothing to do")
    alarm_name = alarm.get("alarmName")
    if not isinstance(alarm_name, str) or not alarm_name:
        raise InvalidInput("detail.alarmName: missing from the alarm event")
    instance_id = _watched_instance(alarm, alarm_name)
    if not INSTANCE_ID.match(instance_id):
        raise InvalidInput(
            f"detail.configuration.metrics: InstanceId {_clip(instance_id)!r} is not an instance ID"
        )
    return Request(instance_id=instance_id, from_alarm=alarm_name)


def _watched_instance(alarm: CloudWatchAlarmData, alarm_name: str) -> str:
    found = set()
    configuration = alarm.get("configuration")
    metrics = configuration.get("metrics") if isinstance(configuration, dict) else None
    for metric in alarm.configuration.metrics if isinstance(metrics, list) else []:
        # Metric-math alarms also list expression entries, which carry no metricStat.
        stat = metric.get("metricStat") if isinstance(metric.raw_event, dict) else None
        inner = stat.get("metric") if isinstance(stat, dict) else None
        dimensions = inner.get("dimensions") if isinstance(inner, dict) else None
        value = dimensions.get("InstanceId") if isinstance(dimensions, dict) else None
        if isinstance(value, str):
            found.add(value)
    if not found:
        raise InvalidInput(
            f"detail.configuration.metrics: alarm {_clip(alarm_name)!r} watches no metric with "
            "an InstanceId dimension"
        )
    if len(found) > 1:
        raise InvalidInput(
            f"detail.configuration.metrics: alarm {_clip(alarm_name)!r} watches several "
            f"instances ({', '.join(sorted(found))}); start the fleet state machine with this "
            "event (the stack's alarm rule does), which resets each of them"
        )
    return found.pop()
