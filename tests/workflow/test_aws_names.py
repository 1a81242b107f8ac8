"""Runs whose requests AWS accepts: the engine refuses what AWS refuses (local/aws_rules.py),
so these fail on code whose names a real account would refuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from local import emulator
from local.aws_rules import AMI_NAME
from local.engine import Engine
from tests.support.workflow import Run, RunScenario

# Step Functions allows these in an execution name; SSM parameter names and security group
# names do not (API_StartExecution, API_PutParameter, API_CreateSecurityGroup).
ODD_NAME = "reset+1=(web)@home!'été"


def named(name: str) -> Callable[[Engine], None]:
    def prepare(engine: Engine) -> None:
        engine.execution_name = name
        engine.execution_names = [name]

    return prepare


def test_default_offline_run_makes_a_backup_ami_aws_accepts(linux_reset: Run) -> None:
    # API_CreateImage: AMI names allow no ":"; the old name failed InvalidAMIName.Malformed
    # after the instance was stopped.
    run = linux_reset

    assert run.report["output"]["Outcome"] == "succeeded", run.report["output"]
    [image_id] = run.world["backups"]["images"]
    name = run.world["images"][image_id]["name"]
    assert AMI_NAME.fullmatch(name) and run.instance()["id"] in name
    run.assert_key_opens()


def test_execution_name_with_characters_resource_names_refuse(run_scenario: RunScenario) -> None:
    run = run_scenario(prepare=named(ODD_NAME))

    assert run.report["output"]["Outcome"] == "succeeded", run.report["output"]
    run.assert_restored()
    run.assert_key_opens()
    run.assert_nothing_left()


def test_janitor_cleans_up_after_an_execution_with_such_a_name(run_scenario: RunScenario) -> None:
    # Stopped once the helper and its network exist: the janitor finds them by the same tag.
    run = run_scenario(
        input={"InstanceId": "@web", "KeyType": "ed25519"},
        abort_at="AttachToHelper",
        prepare=named(ODD_NAME),
    )

    assert run.report["status"] == "ABORTED"
    run.assert_restored()
    run.assert_nothing_left()
    instance_id = run.instance()["id"]
    result = json.loads(run.world["parameters"][f"/reset-access/{instance_id}/result"]["value"])
    assert result["RecordedBy"] == "janitor" and result["CleanedUp"], result


def test_a_state_result_over_256_kib_fails_the_run(run_scenario: RunScenario) -> None:
    # Step Functions quotas: a task's result is at most 256 KiB (States.DataLimitExceeded).
    # moto's interpreter enforces this one; the test keeps the engine from losing it.
    def prepare(engine: Engine) -> None:
        real = engine.handlers["ResetAccess-Preflight"].handler
        padded = SimpleNamespace(
            handler=lambda event, context: {**real(event, context), "Padding": "x" * 262_144}
        )
        engine.handlers["ResetAccess-Preflight"] = padded

    run = run_scenario(prepare=prepare)

    assert run.report["status"] == "FAILED"
    assert "States.DataLimitExceeded" in json.dumps(run.report["history"])
    run.assert_restored()


def test_an_execution_whose_history_reaches_the_quota_fails_and_is_restored(
    run_scenario: RunScenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Step Functions quotas: 25,000 history events, then the execution fails with no Catch run
    # ("Avoid reaching the history quota"). A low quota stands in for a run that loops that
    # long; the janitor, started for the failed execution, puts the world back as in AWS.
    monkeypatch.setattr(emulator, "HISTORY_EVENT_QUOTA", 60)

    run = run_scenario()

    assert run.report["status"] == "FAILED"
    assert run.report["cause"] == emulator.HISTORY_LIMIT_CAUSE
    assert len(run.report["history"]) < 100  # it stopped there, not at the run's end
    assert "Rollback" not in run.states_entered()
    run.assert_restored()
    run.assert_nothing_left()
