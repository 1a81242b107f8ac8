"""The execution input: what is accepted, with defaults, and a refusal that names the field."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

from lambdas.errors import InvalidInput
from lambdas.logic.rescue_contract import (
    MAX_KEY_BASE64,
    MAX_KEY_COMMENT,
    PUBLIC_KEY_LINE,
    PUBLIC_KEY_TYPES,
)

INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,15}$")
# The rescue document's PublicKey pattern, so what passes here passes there.
KEY_LINE = re.compile(PUBLIC_KEY_LINE)
SUBNET_CHOICES = ("CreateNewVPC", "SelectedInstanceSubnet")
MODES = ("auto", "online", "offline", "replace-root")
KEY_TYPES = ("rsa", "ed25519")
BACKUPS = ("ami", "snapshot", "none")

KNOWN_KEYS = (
    "InstanceId",
    "SubnetId",
    "HelperInstanceType",
    "EC2RescueInstanceType",
    "Mode",
    "PublicKey",
    "KeyType",
    "Backup",
    "CreatePasswordEnabledAmi",
    "DryRun",
)


@dataclass(frozen=True)
class Request:
    instance_id: str
    subnet: str = "CreateNewVPC"
    helper_instance_type: str = "t3.small"
    mode: str = "auto"
    public_key: str | None = None
    key_type: str = "rsa"
    backup: str = "ami"
    create_password_enabled_ami: bool = True
    dry_run: bool = False
    from_alarm: str | None = None  # the alarm's name when an alarm event started the run


def parse_request(raw: Any) -> Request:
    """Validate the execution input (or a CloudWatch alarm event) before any AWS call."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            f'input: expected a JSON object like {{"InstanceId": "i-0123456789abcdef0"}}, '
            f"got {type(raw).__name__}"
        )
    if raw.get("source") == "aws.cloudwatch" or "detail-type" in raw:
        return _from_alarm_event(raw)

    unknown = sorted(str(key) for key in raw if key not in KNOWN_KEYS)
    if unknown:
        raise InvalidInput(
            # Quoted: a key of spaces or control characters must still be visible.
            f"{_clip(repr(unknown[0]))}: unknown input key; accepted keys are "
            f"{', '.join(KNOWN_KEYS)}"
        )
    if "InstanceId" not in raw:
        raise InvalidInput('InstanceId: required, e.g. "i-0123456789abcdef0"')
    instance_id = _string(raw, "InstanceId")
    if not INSTANCE_ID.match(instance_id):
        raise InvalidInput(
            f"InstanceId: {_clip(instance_id)!r} is not an instance ID "
            "('i-' and 8 or 17 lowercase hex digits)"
        )

    subnet = _string(raw, "SubnetId", "CreateNewVPC")
    if subnet not in SUBNET_CHOICES and not SUBNET_ID.match(subnet):
        raise InvalidInput(
            f"SubnetId: {_clip(subnet)!r} is neither CreateNewVPC, SelectedInstanceSubnet "
            "nor a subnet ID ('subnet-' and 8 or 17 hex digits)"
        )

    helper_type = _helper_instance_type(raw)
    mode = _choice(raw, "Mode", MODES, "auto")
    backup = _choice(raw, "Backup", BACKUPS, "ami")
    public_key = _public_key(raw)
    key_type = _choice(raw, "KeyType", KEY_TYPES, "rsa")
    if public_key is not None and "KeyType" in raw:
        raise InvalidInput("KeyType: applies to a generated key only; omit it with PublicKey")
    return Request(
        instance_id=instance_id,
        subnet=subnet,
        helper_instance_type=helper_type,
        mode=mode,
        public_key=public_key,
        key_type=key_type,
        backup=backup,
        create_password_enabled_ami=_boolean(raw, "CreatePasswordEnabledAmi", True),
        dry_run=_boolean(raw, "DryRun", False),
    )


def _from_alarm_event(event: dict[str, Any]) -> Request:
    if event.get("source") != "aws.cloudwatch" or (
        event.get("detail-type") != "CloudWatch Alarm State Change"
    ):
        raise InvalidInput(
            "detail-type: only CloudWatch Alarm State Change events from aws.cloudwatch "
            "start a reset"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidInput("detail: the alarm event has no detail object")
    state = detail.get("state")
    if not isinstance(state, dict) or state.get("value") != "ALARM":
        raise InvalidInput("detail.state.value: the alarm is not in ALARM; nothing to do")
    alarm_name = detail.get("alarmName")
    if not isinstance(alarm_name, str) or not alarm_name:
        raise InvalidInput("detail.alarmName: missing from the alarm event")

    found = set()
    configuration = detail.get("configuration")
    metrics = configuration.get("metrics") if isinstance(configuration, dict) else None
    for metric in metrics if isinstance(metrics, list) else []:
        # Metric-math alarms also list expression entries, which carry no metricStat.
        stat = metric.get("metricStat") if isinstance(metric, dict) else None
        dimensions = (
            (stat or {}).get("metric", {}).get("dimensions", {}) if isinstance(stat, dict) else {}
        )
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
            f"instances ({', '.join(sorted(found))}); reset them one execution each"
        )
    instance_id = found.pop()
    if not INSTANCE_ID.match(instance_id):
        raise InvalidInput(
            f"detail.configuration.metrics: InstanceId {_clip(instance_id)!r} is not an instance ID"
        )
    return Request(instance_id=instance_id, from_alarm=alarm_name)


def _clip(value: str, limit: int = 80) -> str:
    """Keep error messages short whatever the caller sent."""
    return value if len(value) <= limit else value[:limit] + "..."


def _string(raw: dict[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = _string(raw, key, default)
    if value not in allowed:
        raise InvalidInput(f"{key}: {_clip(value)!r} is not one of {', '.join(allowed)}")
    return value


def _boolean(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key}: expected true or false, got {_clip(repr(value))}")
    return value


def _helper_instance_type(raw: dict[str, Any]) -> str:
    given = [key for key in ("HelperInstanceType", "EC2RescueInstanceType") if key in raw]
    values = {_string(raw, key) for key in given}
    if len(values) > 1:
        raise InvalidInput(
            "HelperInstanceType: differs from its alias EC2RescueInstanceType; give one"
        )
    value = values.pop() if values else "t3.small"
    if not INSTANCE_TYPE.match(value):
        raise InvalidInput(f"{given[0]}: {_clip(value)!r} is not an instance type like t3.small")
    return value


def _public_key(raw: dict[str, Any]) -> str | None:
    if "PublicKey" not in raw:
        return None
    line = _string(raw, "PublicKey").strip()
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] not in PUBLIC_KEY_TYPES:
        raise InvalidInput(
            "PublicKey: expected one OpenSSH public key line such as "
            "'ssh-ed25519 AAAA... comment' (the content of a .pub file)"
        )
    key_type, blob = parts[0], parts[1]
    if len(blob.rstrip("=")) > MAX_KEY_BASE64:
        raise InvalidInput(
            f"PublicKey: the key data is {len(blob)} characters; OpenSSH loads no key larger "
            f"than a 16384-bit RSA key ({MAX_KEY_BASE64} characters)"
        )
    try:
        decoded = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", decoded[:4])
        embedded = decoded[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise InvalidInput("PublicKey: the key data is not valid base64 of an SSH key") from None
    if embedded != key_type:
        raise InvalidInput(f"PublicKey: the key data is a {embedded!r} key, not {key_type!r}")
    if len(parts) == 3 and not KEY_LINE.fullmatch(f"{key_type} AAAAAAAAAAAAAAAA {parts[2]}"):
        raise InvalidInput(
            "PublicKey: the comment may hold only letters, digits, spaces and @._+=:,/- "
            f"(at most {MAX_KEY_COMMENT} characters, not starting with a space)"
        )
    if not KEY_LINE.fullmatch(line):
        raise InvalidInput(
            "PublicKey: expected '<type> <base64 key data> [comment]' with single spaces"
        )
    return line


def public_key_fingerprint(line: str) -> str:
    """SHA256 fingerprint as ssh-keygen -l prints it."""
    blob = base64.b64decode(line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
