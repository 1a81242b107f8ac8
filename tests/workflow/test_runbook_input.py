"""AWSSupport-ResetAccess's own input, given to the real workflow as is: the reset runs, and the
result says which parameter was not needed and why. Times in the result are ISO 8601."""

from __future__ import annotations

import json
import re
from datetime import datetime

from tests.support.workflow import Run, RunScenario

ISO_8601_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_the_runbook_s_parameters_reset_the_instance_and_say_what_was_not_needed(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario(
        input={
            "InstanceId": "@web",
            "SubnetId": "CreateNewVPC",
            "EC2RescueInstanceType": "t2.small",  # the runbook's default
            "AutomationAssumeRole": "arn:aws:iam::123456789012:role/AutomationServiceRole",
        }
    )
    run.assert_one_clean_reset()
    result = run.report["output"]
    note = next(n for n in result["Notes"] if n.startswith("AutomationAssumeRole:"))
    assert "not needed" in note and "its own least-privilege role" in note
    assert any(n.startswith("EC2RescueInstanceType: t2.small runs on Xen") for n in result["Notes"])
    assert run.report["api_calls"].get("ec2:RunInstances") == 1


def test_times_in_the_result_are_iso_8601(linux_reset: Run) -> None:
    run = linux_reset
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    finished = run.report["output"]["FinishedAt"]
    assert ISO_8601_UTC.match(finished), finished
    # The report's history too; and the result's time is a real one, after the start.
    started = run.report["history"][0]["timestamp"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", started), started
    assert datetime.fromisoformat(finished) >= datetime.fromisoformat(started).replace(
        microsecond=0
    )


def test_times_in_a_failed_run_s_result_are_iso_8601(run_scenario: RunScenario) -> None:
    run = run_scenario(
        faults=[{"state": "RunRescue", "when": "before", "error": "RescueFailed", "times": 99}]
    )
    assert run.report["status"] == "FAILED"
    parameter = run.world["parameters"][f"/reset-access/{run.instance()['id']}/result"]
    result = json.loads(parameter["value"])
    assert result["Outcome"] == "failed" and ISO_8601_UTC.match(result["FinishedAt"]), result
    # The cause is sentences, not a function's error JSON.
    assert not result["Cause"].startswith("{") and "stackTrace" not in result["Cause"], result
