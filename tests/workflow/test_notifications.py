"""Every finished reset is announced on the stack's topic and measured (EMF), on the real
definition: what a person reads, what the dashboard gets, and that neither changes the outcome
nor carries a secret."""

from __future__ import annotations

import json
from typing import Any

import boto3

from lambdas.names import key_parameter
from local.emulator import REGION
from local.engine import Engine
from local.stack_twin import NOTIFY_TOPIC
from tests.support.workflow import Run, RunScenario

RESCUE_FAILS = {"state": "RunRescue", "when": "after", "error": "InjectedFault"}


def metrics(engine: Engine) -> list[dict[str, Any]]:
    """The EMF documents the endings wrote to the functions' log."""
    lines = engine.logs.getvalue().splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"_aws":')]


def run_metrics(engine: Engine) -> dict[str, Any]:
    (run,) = [m for m in metrics(engine) if "Resets" in m]
    return run


def test_a_success_says_how_to_get_the_key_and_is_measured(linux_reset: Run) -> None:
    run = linux_reset
    run.assert_one_clean_reset()
    instance_id = run.instance()["id"]
    (sent,) = run.world["notifications"]
    assert sent["subject"] == f"ResetAccess: {instance_id} reset succeeded"
    message = sent["message"]
    assert f"reset-access get-key {instance_id} --out key.pem" in message
    assert f"--name {key_parameter(instance_id)} --with-decryption" in message
    result = run.report["output"]
    assert result["Fingerprint"] in message and "ec2-user" in message
    assert result["BackupImageId"] in message

    measured = run_metrics(run.engine)
    assert (measured["Outcome"], measured["Mode"], measured["Path"]) == (
        "succeeded",
        "offline",
        "offline",
    )
    assert measured["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ResetAccess"
    # Stopped to running again: some of the run, not all of it, and what the result says.
    assert 0 < measured["DowntimeSeconds"][0] < measured["TotalSeconds"][0]
    assert measured["DowntimeSeconds"][0] == result["DowntimeSeconds"]
    phases = {m["Phase"]: m["PhaseSeconds"][0] for m in metrics(run.engine) if "Phase" in m}
    assert set(phases) == {"Prepare", "Rescue", "Restore"}
    assert phases == {k: v for k, v in result["PhaseSeconds"].items() if k != "Total"}


def test_online_has_no_downtime(run_scenario: RunScenario) -> None:
    from tests.support.workflow import linux_instance

    run = run_scenario({"web": linux_instance(ssm=True)})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    measured = run_metrics(run.engine)
    assert (measured["Mode"], measured["Path"], measured["DowntimeSeconds"]) == (
        "online",
        "online",
        [0.0],
    )


def test_a_rolled_back_failure_says_why(run_scenario: RunScenario) -> None:
    run = run_scenario(faults=[RESCUE_FAILS])
    assert run.report["status"] == "FAILED"
    run.assert_restored()
    instance_id = run.instance()["id"]
    (sent,) = run.world["notifications"]
    assert sent["subject"] == f"ResetAccess: {instance_id} reset failed, rolled back"
    assert "InjectedFault" in sent["message"] and f"{instance_id} is running" in sent["message"]
    # RecordFailure's result says what the rollback put back, as the janitor's does.
    result = json.loads(run.world["parameters"][f"/reset-access/{instance_id}/result"]["value"])
    assert result["RollbackDid"][-1] == f"{instance_id} is running (as before the run)"
    measured = run_metrics(run.engine)
    assert (measured["Outcome"], measured["Mode"]) == ("rolled-back", "offline")
    run.assert_no_secret_leaked()


def test_an_unfinished_rollback_needs_attention_with_the_command(
    run_scenario: RunScenario,
) -> None:
    rollback_fails = {"state": "Rollback", "when": "before", "error": "RollbackIncomplete"}
    run = run_scenario(faults=[RESCUE_FAILS, {**rollback_fails, "times": 50}])
    assert run.report["status"] == "FAILED"
    instance_id = run.instance()["id"]
    (sent,) = run.world["notifications"]
    assert sent["subject"] == f"ResetAccess: {instance_id} NEEDS ATTENTION"
    volume = run.instance()["root_volume_id"]
    # Where things are, and the command that puts the volume back (the helper still has it,
    # or it is detached: either way the message names the volume and what to do).
    assert volume in sent["message"] and "Rollback did not finish" in sent["message"]
    assert run_metrics(run.engine)["Outcome"] == "needs-attention"


def test_a_lost_notification_changes_nothing(run_scenario: RunScenario) -> None:
    def no_topic(engine: Engine) -> None:
        sns = boto3.client("sns", region_name=REGION)
        sns.delete_topic(TopicArn=f"arn:aws:sns:{REGION}:123456789012:{NOTIFY_TOPIC}")

    run = run_scenario(prepare=no_topic)
    run.assert_one_clean_reset()
    assert run.world["notifications"] == []
    assert "notification not sent" in run.engine.logs.getvalue()
