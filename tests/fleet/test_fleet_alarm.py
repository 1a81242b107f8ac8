"""A CloudWatch alarm that watches several instances (the stack's alarm rule starts the fleet
with its event): every watched instance that opted in is reset, by one fleet run, each reset
saying which alarm started it; a watched instance without the opt-in tag is left as it is."""

from __future__ import annotations

import copy
from typing import Any

from lambdas.names import OPT_IN_TAG
from local.engine import Engine
from local.scenario import Scenario
from tests.fleet.test_fleet_workflow import children, fleet_result, run_fleet
from tests.support.workflow import Run, linux_instance

ALARM = "ResetAccess-web-fleet"


def metric_math_alarm(watched: list[str]) -> dict[str, Any]:
    """The event EventBridge delivers for a metric-math alarm over several instances' status
    checks (CloudWatch User Guide, "Alarm events and EventBridge": configuration.metrics lists
    each metricStat, then the expression)."""
    metrics: list[dict[str, Any]] = [
        {
            "id": f"m{n}",
            "metricStat": {
                "metric": {
                    "namespace": "AWS/EC2",
                    "name": "StatusCheckFailed_Instance",
                    "dimensions": {"InstanceId": f"@{name}"},
                },
                "period": 60,
                "stat": "Maximum",
            },
            "returnData": False,
        }
        for n, name in enumerate(watched)
    ]
    ids = ", ".join(metric["id"] for metric in metrics)
    metrics.append({"id": "e1", "expression": f"MAX([{ids}])", "label": "any", "returnData": True})
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-30T04:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM}"],
        "detail": {
            "alarmName": ALARM,
            "state": {
                "value": "ALARM",
                "reason": "Threshold Crossed",
                "timestamp": "2026-11-30T04:00:00.000+0000",
            },
            "previousState": {"value": "OK"},
            "configuration": {"metrics": metrics},
        },
    }


def test_a_multi_instance_alarm_resets_every_watched_instance_in_one_fleet_run() -> None:
    opted_in = {OPT_IN_TAG: "true"}
    watched = ["web0", "web1", "web2", "web3", "web4", "other"]
    instances = {name: linux_instance(tags=opted_in) for name in watched[:5]}
    instances["other"] = linux_instance()  # watched, but not opted in
    instances["bystander"] = linux_instance(tags=opted_in)  # opted in, not watched
    run = run_fleet(instances, metric_math_alarm(watched))

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    # One reset per watched instance, five at once at most (a new VPC each, 5 per Region).
    assert children(run) == dict.fromkeys(watched, "SUCCEEDED")
    assert run.report["max_running"] <= 4
    for name in watched[:5]:
        run.assert_restored(name)
        run.assert_key_opens(name)
    outcomes = {line["InstanceId"]: line["Outcome"] for line in fleet_result(run)}
    assert outcomes == {
        **{run.instance(name)["id"]: "Succeeded" for name in watched[:5]},
        run.instance("other")["id"]: "NotChanged",
    }
    for name in ("other", "bystander"):
        assert run.world["instances"][name] == run.engine.world_before["instances"][name]
        assert (
            run.world["authorized_keys"][name] == run.engine.world_before["authorized_keys"][name]
        )
    run.assert_nothing_left()
    assert run.world["locks"] == {}


def test_the_circuit_breaker_holds_each_instance_of_an_alarm_fleet() -> None:
    """The same alarm again within the cooldown: each child names the alarm (StartedByAlarm),
    so the breaker, per instance, lets none of them reset again."""
    opted_in = {OPT_IN_TAG: "true"}
    instances = {name: linux_instance(tags=opted_in) for name in ("web0", "web1")}
    event = metric_math_alarm(["web0", "web1"])
    engine = Engine(Scenario.from_dict({"workflow": "fleet", "instances": instances, "input": {}}))
    with engine.session() as execute:
        first = Run(engine, execute(copy.deepcopy(event)))
        first_lines = fleet_result(first)
        second = Run(engine, execute(copy.deepcopy(event)))
        second_lines = fleet_result(second)

    assert first.report["status"] == "SUCCEEDED", first.report["cause"]
    assert {line["Outcome"] for line in first_lines} == {"Succeeded"}
    assert second.report["status"] == "SUCCEEDED", second.report["cause"]
    assert [line["Outcome"] for line in second_lines] == ["NotChanged", "NotChanged"]
