"""Started by the alarm rule: only instances that opted in are touched."""

from __future__ import annotations

from typing import Any

from tests.support.workflow import RunScenario, linux_instance


def alarm_event(metric_math: bool = False) -> dict[str, Any]:
    metric = {
        "id": "m1",
        "metricStat": {
            "metric": {
                "namespace": "AWS/EC2",
                "name": "StatusCheckFailed_Instance",
                "dimensions": {"InstanceId": "@web"},
            },
            "period": 60,
            "stat": "Maximum",
        },
        "returnData": not metric_math,
    }
    metrics = [metric]
    if metric_math:
        metrics.append(
            {"id": "e1", "expression": "MAX([m1])", "label": "failed", "returnData": True}
        )
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-28T04:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ResetAccess-web"],
        "detail": {
            "alarmName": "ResetAccess-web",
            "state": {
                "value": "ALARM",
                "reason": "Threshold Crossed",
                "timestamp": "2026-11-28T04:00:00.000+0000",
            },
            "previousState": {"value": "OK"},
            "configuration": {"metrics": metrics},
        },
    }


def test_alarm_on_opted_in_instance_resets_it(run_scenario: RunScenario) -> None:
    web = linux_instance(tags={"ResetAccess:AutoRecover": "true"})
    run = run_scenario({"web": web}, input=alarm_event())
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()


def test_metric_math_alarm_finds_the_instance(run_scenario: RunScenario) -> None:
    web = linux_instance(tags={"ResetAccess:AutoRecover": "true"})
    run = run_scenario({"web": web}, input=alarm_event(metric_math=True))
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_key_opens()


def test_alarm_without_opt_in_changes_nothing(run_scenario: RunScenario) -> None:
    run = run_scenario(input=alarm_event())
    assert run.report["status"] == "SUCCEEDED"
    assert run.report["output"]["Action"] == "skip"
    assert "ResetAccess:AutoRecover=true" in run.report["output"]["Notes"][0]
    run.assert_unchanged()
