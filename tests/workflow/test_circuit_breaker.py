"""Alarm-started resets are bounded: a flapping alarm resets an instance once per cooldown, a
failed alarm-started reset blocks the next until a person clears it, and starts by a person are
never blocked. The real definition on the local engine, one world for the whole story."""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from lambdas.logic.breaker import clear_command
from lambdas.names import OPT_IN_TAG, breaker_key
from local.emulator import REGION
from local.engine import Engine
from local.scenario import Fault, Scenario
from local.stack_twin import LOCK_TABLE
from tests.support.workflow import linux_instance
from tests.workflow.test_alarm_trigger import alarm_event

Execute = Callable[[Any], dict[str, Any]]


@pytest.fixture
def world() -> Iterator[tuple[Engine, Execute]]:
    scenario = Scenario.from_dict(
        {
            "instances": {"web": linux_instance(tags={OPT_IN_TAG: "true"})},
            "input": alarm_event(),
            "faults": [],
        }
    )
    engine = Engine(scenario)
    with engine.session() as execute:
        yield engine, execute


def resets(report: dict[str, Any]) -> int:
    """How many times this execution stopped the instance."""
    return int(report["api_calls"].get("ec2:StopInstances", 0))


def subjects(report: dict[str, Any]) -> list[str]:
    return [n["subject"] for n in report["world"]["notifications"]]


def hours_pass(engine: Engine, hours: float) -> None:
    """The breaker's clock is its item's StartedAt: move it back as if the hours had passed."""
    table = boto3.client("dynamodb", region_name=REGION)
    key = {"InstanceId": {"S": breaker_key(engine.ids["web"])}}
    item = table.get_item(TableName=LOCK_TABLE, Key=key)["Item"]
    item["StartedAt"] = {"N": str(int(item["StartedAt"]["N"]) - int(hours * 3600))}
    table.put_item(TableName=LOCK_TABLE, Item=item)


def test_flapping_alarm_resets_once_and_skips_the_rest(world: tuple[Engine, Execute]) -> None:
    engine, execute = world
    first = execute(alarm_event())
    assert first["status"] == "SUCCEEDED", first["cause"]
    assert resets(first) == 1
    assert first["world"]["breakers"][engine.ids["web"]]["status"] == "succeeded"

    for _ in range(3):
        again = execute(alarm_event())
        assert again["status"] == "SUCCEEDED", again["cause"]
        assert again["output"]["Action"] == "skip"
        assert "at most one alarm-started reset per 6.0 h" in again["output"]["Notes"][-1]
        assert resets(again) == 0
        assert again["api_calls"].get("ec2:CreateImage", 0) == 0
    # The instance running with its volume, and a message for each run.
    instance = again["world"]["instances"]["web"]
    assert instance["state"] == "running"
    assert instance["root_attached_to"] == engine.ids["web"]
    assert (
        subjects(again)
        == [f"ResetAccess: {engine.ids['web']} reset succeeded"]
        + [f"ResetAccess: alarm reset of {engine.ids['web']} skipped"] * 3
    )
    assert again["world"]["locks"] == {}

    # Once the cooldown is over, the alarm resets it again.
    hours_pass(engine, 6.1)
    later = execute(alarm_event())
    assert later["status"] == "SUCCEEDED", later["cause"]
    assert resets(later) == 1


def test_a_failed_alarm_reset_blocks_alarms_until_cleared(world: tuple[Engine, Execute]) -> None:
    engine, execute = world
    instance_id = engine.ids["web"]
    with engine.faults(Fault("AttachToHelper", "before", "InjectedFault", times=1)):
        failed = execute(alarm_event())
    assert failed["status"] == "FAILED"
    assert failed["world"]["instances"]["web"]["state"] == "running"  # rolled back
    assert failed["world"]["breakers"][instance_id]["status"] == "failed"
    assert subjects(failed)[-1] == f"ResetAccess: {instance_id} reset failed, rolled back"

    # Long after the cooldown, still blocked: a person has to look first.
    hours_pass(engine, 48)
    blocked = execute(alarm_event())
    assert blocked["output"]["Action"] == "skip"
    reason = blocked["output"]["Notes"][-1]
    assert "failed" in reason and clear_command(LOCK_TABLE, instance_id) in reason
    assert resets(blocked) == 0

    # A person's start is never blocked, and does not clear the breaker.
    by_hand = execute({"InstanceId": "@web"})
    assert by_hand["status"] == "SUCCEEDED", by_hand["cause"]
    assert resets(by_hand) == 1
    assert execute(alarm_event())["output"]["Action"] == "skip"

    # The documented command clears it (run here against the local table).
    command = shlex.split(clear_command(LOCK_TABLE, instance_id))
    assert command[:3] == ["aws", "dynamodb", "delete-item"]
    key = {"InstanceId": {"S": breaker_key(instance_id)}}
    assert command[command.index("--key") + 1] == json.dumps(key)
    boto3.client("dynamodb", region_name=REGION).delete_item(TableName=LOCK_TABLE, Key=key)
    cleared = execute(alarm_event())
    assert cleared["status"] == "SUCCEEDED", cleared["cause"]
    assert resets(cleared) == 1


def test_started_by_alarm_input_is_under_the_breaker(world: tuple[Engine, Execute]) -> None:
    """A fleet's child started for an alarm says so with StartedByAlarm."""
    _, execute = world
    child = {"InstanceId": "@web", "StartedByAlarm": "ResetAccess-web"}
    assert resets(execute(copy.deepcopy(child))) == 1
    skipped = execute(copy.deepcopy(child))
    assert skipped["output"]["Action"] == "skip"
    assert "alarm ResetAccess-web fired" in skipped["output"]["Notes"][-1]


def test_two_alarms_at_once_make_one_reset(run_scenario: Any) -> None:
    web = linux_instance(tags={OPT_IN_TAG: "true"})
    run = run_scenario({"web": web}, input=alarm_event(), copies=2)
    executions = run.report["executions"]
    assert sorted(e["status"] for e in executions) == ["SUCCEEDED", "SUCCEEDED"]
    stopped = [e for e in executions if "StopInstance" in e["states"]]
    skipped = [e for e in executions if e["states"] == ["Preflight", "Route", "NotOptedIn"]]
    assert len(stopped) == 1 and len(skipped) == 1
    run.assert_restored()
    run.assert_key_opens()
