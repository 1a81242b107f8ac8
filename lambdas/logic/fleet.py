"""The fleet's input in SSM Automation's shape (Targets, TargetLocations, MaxConcurrency,
MaxErrors), the instances it names, and the fleet's result.

Every single-instance key except InstanceId applies to each instance and is checked by
`parse_request`, the one validation of a reset's input, so a fleet refuses what a reset would.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdas.errors import InvalidInput
from lambdas.logic.inputs import KNOWN_KEYS, parse_request
from lambdas.names import (
    OWN_PARAMETERS,
    STACK_NAME,
    UNSAFE_CHARACTER,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef

FLEET_KEYS = ("Targets", "TargetLocations", "MaxConcurrency", "MaxErrors", "SharedKey")
PER_INSTANCE_KEYS = tuple(key for key in KNOWN_KEYS if key != "InstanceId")
ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
RATE = re.compile(r"^([1-9]\d*)(%?)$")
TAG_KEY = re.compile(r"^tag:(.{1,128})$")
# SSM Automation's defaults for rate control.
DEFAULT_MAX_CONCURRENCY = "10"
DEFAULT_MAX_ERRORS = "0"
# Each instance's entry in the Map's output is its target and its reset's output, about 1.5 KB
# (measured, Linux offline); Step Functions refuses a state above 256 KiB
# (States.DataLimitExceeded), so a fleet stays under it with room for longer outputs.
MAX_TARGETS = 120
# EC2's request-rate token buckets (README "Fleets": throttling) hold up at this many resets
# at once; more would only queue on throttling.
MAX_CONCURRENCY = 100
# A CreateNewVPC reset makes a VPC and an internet gateway; a Region holds 5 of each by default
# (Amazon VPC quotas), one VPC being the default VPC.
NEW_VPCS_AT_ONCE = 4
# Instances in these states cannot be reset and are no target (SSM skips them too).
GONE_STATES = ("shutting-down", "terminated")
# Step Functions execution names: at most 80 characters.
NAME_LIMIT = 80
FLEET_RESULTS = f"{OWN_PARAMETERS}/fleet"
# Standard-tier parameters hold 4 KB; the result is split into pages of at most this many bytes.
PAGE_BYTES = 4000


@dataclass(frozen=True)
class Location:
    account: str
    region: str
    # SSM's ExecutionRoleName; None: the member stack's role (names.member_role_name).
    role_name: str | None = None


@dataclass(frozen=True)
class FleetRequest:
    tags: dict[str, list[str]] = field(default_factory=dict)
    instance_ids: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    max_concurrency: str = DEFAULT_MAX_CONCURRENCY
    max_errors: str = DEFAULT_MAX_ERRORS
    reset_input: dict[str, Any] = field(default_factory=dict)
    started_by_alarm: str | None = None

    def filters(self) -> list[FilterTypeDef]:
        """DescribeInstances filters that select the targets (tags are ANDed, as in SSM)."""
        filters: list[FilterTypeDef] = [
            {"Name": f"tag:{key}", "Values": values} for key, values in self.tags.items()
        ]
        if self.instance_ids:
            filters.append({"Name": "instance-id", "Values": list(self.instance_ids)})
        return filters


def parse_fleet_request(raw: Any) -> FleetRequest:
    """Validate the fleet's input before any AWS call; a refusal names the field."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            'input: expected a JSON object like {"Targets": [{"Key": "tag:Team", "Values": '
            '["web"]}]}'
        )
    if raw.get("source") == "aws.cloudwatch":
        return _from_alarm(raw)
    unknown = sorted(str(key) for key in raw if key not in (*FLEET_KEYS, *PER_INSTANCE_KEYS))
    if unknown:
        hint = " (a fleet names instances in Targets)" if unknown[0] == "InstanceId" else ""
        raise InvalidInput(
            f"{unknown[0]!r}: unknown fleet input key{hint}; accepted keys are "
            f"{', '.join((*FLEET_KEYS, *PER_INSTANCE_KEYS))}"
        )
    reset_input = {key: raw[key] for key in PER_INSTANCE_KEYS if key in raw}
    # The same checks as a single reset's, on a stand-in instance ID.
    parse_request({**reset_input, "InstanceId": "i-00000000"})
    shared = raw.get("SharedKey", False)
    if not isinstance(shared, bool):
        raise InvalidInput("SharedKey: true or false")
    if shared and "PublicKey" not in reset_input:
        raise InvalidInput(
            "SharedKey: a fleet-wide generated key is not offered; give your own PublicKey "
            "to open every instance with one key, or leave SharedKey out (one key each)"
        )
    tags, instance_ids = _targets(raw.get("Targets"))
    return FleetRequest(
        tags=tags,
        instance_ids=instance_ids,
        locations=_locations(raw.get("TargetLocations")),
        max_concurrency=_rate(raw, "MaxConcurrency", DEFAULT_MAX_CONCURRENCY, minimum=1),
        max_errors=_rate(raw, "MaxErrors", DEFAULT_MAX_ERRORS, minimum=0),
        reset_input=reset_input,
    )


def _from_alarm(event: dict[str, Any]) -> FleetRequest:
    """A CloudWatch alarm that watches several instances: each of them, as its own reset that
    says which alarm started it (the circuit breaker counts per instance and alarm)."""
    given = event.get("detail")
    detail: dict[str, Any] = given if isinstance(given, dict) else {}
    name = detail.get("alarmName")
    if not isinstance(name, str) or not name:
        raise InvalidInput("detail.alarmName: missing from the alarm event")
    state = detail.get("state")
    if not isinstance(state, dict) or state.get("value") != "ALARM":
        raise InvalidInput("detail.state.value: the alarm is not in ALARM; nothing to do")
    found: set[str] = set()
    configuration = detail.get("configuration")
    metrics = configuration.get("metrics") if isinstance(configuration, dict) else None
    for metric in metrics if isinstance(metrics, list) else []:
        stat = metric.get("metricStat") if isinstance(metric, dict) else None
        watched = stat.get("metric") if isinstance(stat, dict) else None
        dimensions = watched.get("dimensions") if isinstance(watched, dict) else None
        value = dimensions.get("InstanceId") if isinstance(dimensions, dict) else None
        if isinstance(value, str):
            parse_request({"InstanceId": value})
            found.add(value)
    if not found:
        raise InvalidInput(
            f"detail.configuration.metrics: alarm {name[:80]!r} watches no metric with an "
            "InstanceId dimension"
        )
    # No one chose a concurrency: as many at once as new VPCs fit a Region (SubnetId default).
    return FleetRequest(
        instance_ids=tuple(sorted(found)),
        started_by_alarm=name,
        max_concurrency=str(NEW_VPCS_AT_ONCE),
    )


def _targets(targets: Any) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    example = (
        '[{"Key": "tag:Team", "Values": ["web"]}] or [{"Key": "InstanceIds", "Values": [...]}]'
    )
    if not isinstance(targets, list) or not 1 <= len(targets) <= 5:
        raise InvalidInput(f"Targets: required, 1 to 5 targets like {example}")
    tags: dict[str, list[str]] = {}
    instance_ids: tuple[str, ...] = ()
    for index, target in enumerate(targets):
        where = f"Targets[{index}]"
        if not isinstance(target, dict) or set(target) != {"Key", "Values"}:
            raise InvalidInput(f"{where}: expected {{'Key': ..., 'Values': [...]}}")
        key, values = target["Key"], target["Values"]
        if (
            not isinstance(values, list)
            or not 1 <= len(values) <= 50
            or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in values)
        ):
            raise InvalidInput(f"{where}.Values: 1 to 50 strings")
        tag = TAG_KEY.match(key) if isinstance(key, str) else None
        if key == "InstanceIds":
            for value in values:
                parse_request({"InstanceId": value})
            instance_ids = tuple(values)
        elif tag:
            tags[tag.group(1)] = list(values)
        else:
            raise InvalidInput(f"{where}.Key: 'InstanceIds' or 'tag:<key>', got {key!r}")
    if instance_ids and tags:
        raise InvalidInput("Targets: InstanceIds or tags, not both (as in SSM Automation)")
    return tags, instance_ids


def _locations(given: Any) -> tuple[Location, ...]:
    if given is None:
        return ()
    if not isinstance(given, list) or not 1 <= len(given) <= 100:
        raise InvalidInput(
            'TargetLocations: a list like [{"Accounts": ["111122223333"], "Regions": '
            '["us-east-1"]}]'
        )
    locations: list[Location] = []
    for index, location in enumerate(given):
        where = f"TargetLocations[{index}]"
        if not isinstance(location, dict):
            raise InvalidInput(f"{where}: expected an object with Accounts and Regions")
        unknown = sorted(set(location) - {"Accounts", "Regions", "ExecutionRoleName"})
        if unknown:
            raise InvalidInput(
                f"{where}.{unknown[0]}: unknown; accepted are Accounts, Regions, ExecutionRoleName"
            )
        accounts, regions = location.get("Accounts"), location.get("Regions")
        if (
            not isinstance(accounts, list)
            or not accounts
            or not all(isinstance(a, str) and ACCOUNT.match(a) for a in accounts)
        ):
            raise InvalidInput(f"{where}.Accounts: account IDs of 12 digits")
        if (
            not isinstance(regions, list)
            or not regions
            or not all(isinstance(r, str) and REGION.match(r) for r in regions)
        ):
            raise InvalidInput(f"{where}.Regions: Region names like eu-west-1")
        role = location.get("ExecutionRoleName")
        if role is not None and (
            not isinstance(role, str) or not re.fullmatch(r"[\w+=,.@-]{1,64}", role)
        ):
            raise InvalidInput(f"{where}.ExecutionRoleName: an IAM role name")
        locations += [Location(a, r, role) for a in accounts for r in regions]
    return tuple(dict.fromkeys(locations))


def check_reach(
    request: FleetRequest, here: Location, accounts: tuple[str, ...], regions: tuple[str, ...]
) -> None:
    """Refuse, before anything starts, a location outside the accounts and Regions the stack
    was deployed to reach (CDK context memberAccounts, memberRegions; empty: any); `here` (the
    fleet's own account and Region) is always within reach."""
    for location in request.locations:
        if accounts and location.account not in (here.account, *accounts):
            raise InvalidInput(
                f"TargetLocations: account {location.account} is not in this stack's "
                f"memberAccounts ({', '.join(accounts)}); add it there and deploy again, or "
                "leave it out"
            )
        if regions and location.region not in (here.region, *regions):
            raise InvalidInput(
                f"TargetLocations: Region {location.region} is not in this stack's "
                f"memberRegions ({', '.join(regions)}); add it there and deploy again, or "
                "leave it out"
            )


def _rate(raw: dict[str, Any], key: str, default: str, *, minimum: int) -> str:
    value = raw.get(key, default)
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = RATE.match(text) if isinstance(text, str) else None
    if text == "0" and minimum == 0:
        return text
    if not match or (match.group(2) and int(match.group(1)) > 100):
        raise InvalidInput(
            f"{key}: a whole number (at least {max(minimum, 1)}) or a percentage like "
            f"'10%', as in SSM Automation; got {value!r}"
        )
    return str(text)


def count_of(rate: str, total: int, *, at_least: int) -> int:
    """A number or percentage of the targets: a concurrency is rounded up, so it is never 0;
    an error budget down, so a percentage never tolerates more than it says."""
    if rate.endswith("%"):
        share = int(rate[:-1]) * total / 100
        count = math.ceil(share) if at_least else math.floor(share)
    else:
        count = int(rate)
    return max(at_least, count)


def check_network_room(request: FleetRequest, concurrency: int) -> None:
    """Refuse a concurrency whose new VPCs would exceed the Region's VPC quota mid-fleet."""
    if concurrency > MAX_CONCURRENCY:
        raise InvalidInput(
            f"MaxConcurrency: {concurrency} at once is more than {MAX_CONCURRENCY}, where EC2's "
            "request rates for the resets' calls would throttle them (README, Fleets)"
        )
    subnet = request.reset_input.get("SubnetId", "CreateNewVPC")
    if subnet == "CreateNewVPC" and concurrency > NEW_VPCS_AT_ONCE:
        raise InvalidInput(
            f"MaxConcurrency: {concurrency} resets at once with SubnetId CreateNewVPC would make "
            f"{concurrency} VPCs, and a Region holds 5 by default (one is the default VPC); give "
            f'"SubnetId": "SelectedInstanceSubnet" (each helper joins its instance\'s subnet) or '
            f"a MaxConcurrency of {NEW_VPCS_AT_ONCE} or less"
        )


def find_instances(ec2: EC2Client, request: FleetRequest) -> Iterator[dict[str, Any]]:
    """The targets in one account and Region, every page of them, with their platform."""
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=request.filters(), PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] not in GONE_STATES:
                    yield dict(instance)


def child_name(fleet_execution: str, instance_id: str, location: str = "") -> str:
    """The child execution's name: the fleet's, cut to fit, then the instance (and where)."""
    suffix = f"-{instance_id}{location}"
    prefix = UNSAFE_CHARACTER.sub("-", fleet_execution)[: NAME_LIMIT - len(suffix)]
    return f"{prefix}{suffix}"


@dataclass(frozen=True)
class Where:
    """One location as the fleet reaches it: its client factory and its ResetAccess machine."""

    location: Location
    state_machine_arn: str
    role_arn: str | None
    ec2: Callable[[], EC2Client]
    # In another Region: started and followed by functions, not by the `.sync` integration.
    remote: bool = False


def targets(
    request: FleetRequest, places: list[Where], fleet_execution: str
) -> list[dict[str, Any]]:
    """One Map item per instance: where its ResetAccess runs and the input it gets."""
    items: list[dict[str, Any]] = []
    many = len(places) > 1
    for place in places:
        found = sorted(find_instances(place.ec2(), request), key=lambda i: i["InstanceId"])
        for instance in found:
            instance_id = instance["InstanceId"]
            reset_input = {**request.reset_input, "InstanceId": instance_id}
            if request.started_by_alarm:
                reset_input["StartedByAlarm"] = request.started_by_alarm
            where = f"-{place.location.account[-4:]}-{place.location.region}" if many else ""
            item = {
                "InstanceId": instance_id,
                "Account": place.location.account,
                "Region": place.location.region,
                "StateMachineArn": place.state_machine_arn,
                "Name": child_name(fleet_execution, instance_id, where),
                "Input": reset_input,
            }
            if place.role_arn:
                item["RoleArn"] = place.role_arn
            if place.remote:
                item["Remote"] = True
            items.append(item)
    if not items:
        raise InvalidInput(
            "Targets: no instance matches in "
            + ", ".join(f"{p.location.account}/{p.location.region}" for p in places)
            + "; check the tag or IDs, and that the instances are not terminated"
        )
    if len(items) > MAX_TARGETS:
        raise InvalidInput(
            f"Targets: {len(items)} instances match; a fleet run takes at most {MAX_TARGETS}. "
            "Narrow the tag or split the fleet by Region"
        )
    return items


def state_machine_arn(partition: str, location: Location) -> str:
    """A member stack's ResetAccess state machine (its name is fixed for this)."""
    return f"arn:{partition}:states:{location.region}:{location.account}:stateMachine:{STACK_NAME}"


# -- the fleet's result -------------------------------------------------------------------


def outcome_of(item: dict[str, Any]) -> dict[str, Any]:
    """One instance's line of the fleet result, from its Map iteration's output."""
    target = item.get("target", {})
    line: dict[str, Any] = {
        "InstanceId": target.get("InstanceId"),
        "Account": target.get("Account"),
        "Region": target.get("Region"),
        "Execution": target.get("Name"),
    }
    if item.get("skipped"):
        return {**line, "Outcome": "NotAttempted"}
    if "error" in item:
        return {**line, "Outcome": "Failed", **_child_failure(item["error"])}
    child = item.get("child", {})
    if child.get("Status") == "SUCCEEDED":
        output = child.get("Output") or {}
        line["Outcome"] = "Succeeded"
        if output.get("Action") in ("skip", "dry-run"):
            line["Outcome"] = "NotChanged"
        for key in ("KeyParameter", "PasswordParameter", "ResultParameter"):
            if output.get(key):
                line[key] = output[key]
        return line
    # A child followed in another Region brings its own error and cause.
    failure = {"Error": str(child.get("Error") or child.get("Status"))}
    if child.get("Cause"):
        failure["Cause"] = str(child["Cause"])[:300]
    return {**line, "Outcome": "Failed", **failure}


def _child_failure(error: Any) -> dict[str, str]:
    """The child's own error and cause, out of Step Functions' States.TaskFailed (whose cause
    is the child's DescribeExecution) or the start's refusal."""
    error = error if isinstance(error, dict) else {}
    cause = error.get("Cause", "")
    try:
        described = json.loads(cause)
    except (TypeError, ValueError):
        described = None
    if isinstance(described, dict) and "Status" in described:
        return {
            "Error": str(described.get("Error") or described["Status"]),
            "Cause": str(described.get("Cause") or "")[:300],
        }
    return {"Error": str(error.get("Error", "Failed")), "Cause": str(cause)[:300]}


def pages(lines: list[dict[str, Any]]) -> list[str]:
    """The instances' lines as JSON pages that each fit a standard parameter."""
    result: list[str] = []
    page: list[dict[str, Any]] = []
    for line in lines:
        if page and len(json.dumps([*page, line], separators=(",", ":"))) > PAGE_BYTES:
            result.append(json.dumps(page, separators=(",", ":")))
            page = []
        page.append(line)
    if page:
        result.append(json.dumps(page, separators=(",", ":")))
    return result


def fleet_parameter(fleet_execution: str) -> str:
    return f"{FLEET_RESULTS}/{UNSAFE_CHARACTER.sub('-', fleet_execution)}/result"
