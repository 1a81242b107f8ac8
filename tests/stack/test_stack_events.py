"""The example inputs in events/: accepted by Preflight's parser, and the alarm examples match
the alarm rule as deployed (EventBridge pattern semantics, as moto implements them)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, cast

import pytest
from moto.events.models import EventPattern

from lambdas.logic.inputs import parse_request
from tests.support.synth import ROOT, Synth

EVENTS = ROOT / "events"
ALARM_EVENTS = ("alarm-event.json", "alarm-event-metric-math.json")
REQUIRED = (
    "reset-linux.json",
    "reset-linux-replace-root.json",
    "reset-with-public-key.json",
    "dry-run.json",
    *ALARM_EVENTS,
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


def matches(pattern: EventPattern, event: dict[str, Any]) -> bool:
    return bool(pattern.matches_event(cast(Any, event)))  # moto types events as a TypedDict


def rule_pattern(synth: Synth, source: str) -> EventPattern:
    for resource in synth.of_type("AWS::Events::Rule").values():
        pattern = resource["Properties"]["EventPattern"]
        if pattern["source"] == [source]:
            return EventPattern.load(json.dumps(pattern))
    raise AssertionError(f"no rule for {source}")


def test_the_documented_examples_exist() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(REQUIRED)


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_preflight_accepts_every_example(name: str) -> None:
    request = parse_request(load(name))
    assert request.instance_id == "i-0123456789abcdef0"
    assert (request.from_alarm is not None) is (name in ALARM_EVENTS)


@pytest.mark.parametrize("name", ALARM_EVENTS)
def test_alarm_examples_start_the_workflow(synth: Synth, name: str) -> None:
    assert matches(rule_pattern(synth, "aws.cloudwatch"), load(name))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"alarmName": "web-1-status"}, "an alarm without the prefix"),
        ({"alarmName": "resetaccess-web-1"}, "the prefix is case-sensitive"),
        ({"state": {"value": "OK"}}, "back to OK"),
        ({"state": {"value": "INSUFFICIENT_DATA"}}, "no data"),
    ],
)
def test_other_alarm_changes_do_not(synth: Synth, change: dict[str, Any], why: str) -> None:
    event = copy.deepcopy(load("alarm-event.json"))
    event["detail"].update(change)
    assert not matches(rule_pattern(synth, "aws.cloudwatch"), event), why


def execution_status_event(status: str, machine_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2025-06-02T10:00:00Z",
        "region": "eu-west-1",
        "resources": [f"{machine_arn.replace(':stateMachine:', ':execution:')}:run-1"],
        "detail": {
            "executionArn": f"{machine_arn.replace(':stateMachine:', ':execution:')}:run-1",
            "stateMachineArn": machine_arn,
            "name": "run-1",
            "status": status,
            "startDate": 1748858400000,
            "stopDate": 1748858700000,
            "input": "{}",
            "output": None,
        },
    }


@pytest.mark.parametrize(
    ("status", "janitor_runs"),
    [("ABORTED", True), ("TIMED_OUT", True), ("FAILED", True), ("SUCCEEDED", False)],
)
def test_janitor_rule_fires_for_unfinished_executions(
    synth: Synth, tmp_path: Path, status: str, janitor_runs: bool
) -> None:
    resource = next(
        r
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    )
    pattern = copy.deepcopy(resource["Properties"]["EventPattern"])
    ours = "arn:aws:states:eu-west-1:123456789012:stateMachine:ResetAccess"
    pattern["detail"]["stateMachineArn"] = [ours]  # what the Ref resolves to once deployed
    matcher = EventPattern.load(json.dumps(pattern))
    assert matches(matcher, execution_status_event(status, ours)) is janitor_runs
    other = "arn:aws:states:eu-west-1:123456789012:stateMachine:SomethingElse"
    assert not matches(matcher, execution_status_event(status, other))
