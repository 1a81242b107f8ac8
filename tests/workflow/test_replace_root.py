"""Mode replace-root on the real definition: the instance is never stopped, keeps its public IP
and network interface, and boots from the repaired copy of its root volume after one reboot;
the old root volume is kept and tagged; a failed replacement puts the old root back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lambdas import timestamps
from lambdas.names import REPLACED_BY_TAG
from local import emulator
from local.engine import Engine
from local.volumes import read_authorized_keys
from tests.support.workflow import OLD_KEY, Run, RunScenario, linux_instance, windows_instance
from tests.workflow.test_notifications import metrics

REPLACE = {"InstanceId": "@web", "Mode": "replace-root", "KeyType": "ed25519"}


def assert_replaced(run: Run) -> None:
    """What a user of replace-root cares about after a successful run."""
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    before = run.engine.world_before["instances"]["web"]
    after = run.instance()
    old = before["root_volume_id"]
    addresses = (run.engine.world_before["addresses"]["web"], run.world["addresses"]["web"])
    # Never stopped: one reboot, the same interface and public IP.
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == 0
    assert run.report["api_calls"].get("ec2:StartInstances", 0) == 0
    assert after["state"] == "running"
    assert run.world["reboots"]["web"] == 1
    assert addresses[1] == addresses[0]
    # It boots from the repaired copy, which the key opens.
    output = run.report["output"]
    assert after["booting_from"] == output["RootVolumeId"] != old
    run.assert_key_opens()
    assert run.world["authorized_keys"]["web"]["ec2-user"][0] == OLD_KEY
    # The old root volume is kept, detached, tagged with the run, and reported.
    assert output["ReplacedRootVolumeId"] == old
    execution = run.engine.execution_name
    assert run.world["kept_root_volumes"] == {
        old: {"state": "available", "tags": {REPLACED_BY_TAG: execution}}
    }
    assert "crash-consistent copy" in output["Tradeoff"] and old in output["Tradeoff"]
    run.assert_nothing_left()
    run.assert_no_secret_leaked()
    assert run.world["locks"] == {}


def test_the_instance_is_never_stopped_and_boots_from_the_repaired_copy(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario(input=REPLACE)

    assert_replaced(run)
    # The backup is a snapshot of the running root (an AMI would reboot it once more).
    assert run.world["backups"] == {"images": [], "snapshots": run.world["backups"]["snapshots"]}
    assert len(run.world["backups"]["snapshots"]) == 1
    assert run.report["api_calls"].get("ec2:CopyVolumes") == 1
    assert run.report["api_calls"].get("ec2:CreateReplaceRootVolumeTask") == 1
    assert_downtime_is_the_reboot(run)


def assert_downtime_is_the_reboot(run: Run) -> None:
    """The reboot is downtime: the task's StartTime to its CompleteTime, in the result, the
    metric and the message alike (it was reported as 0)."""
    (task,) = run.engine.ssm_world.ebs.tasks.values()
    assert task.complete_time is not None
    rebooted = timestamps.epoch(task.complete_time) - timestamps.epoch(task.start_time)
    result = run.report["output"]
    assert 0 < result["DowntimeSeconds"] == round(rebooted, 3)
    assert result["DowntimeSeconds"] < result["PhaseSeconds"]["Total"]
    (measured,) = [m for m in metrics(run.engine) if "Resets" in m]
    assert (measured["Mode"], measured["DowntimeSeconds"]) == (
        "replace-root",
        [result["DowntimeSeconds"]],
    )
    (sent,) = run.world["notifications"]
    assert "Downtime: " in sent["message"] and "(one reboot" in sent["message"], sent["message"]


def test_the_old_root_volume_is_left_as_it_was(run_scenario: RunScenario, tmp_path: Any) -> None:
    # Writes made between the copy and the reboot exist only on the old volume: the run
    # never writes to it, so it still holds exactly what the instance had.
    run = run_scenario(input=REPLACE, workdir=tmp_path)

    old = run.engine.world_before["instances"]["web"]["root_volume_id"]
    tree = run.engine.ssm_world.volume_trees[old]
    assert read_authorized_keys(tree, linux_instance()["volume"]) == {"ec2-user": [OLD_KEY]}


def test_dry_run_says_what_replace_root_would_do(run_scenario: RunScenario) -> None:
    run = run_scenario(input={**REPLACE, "DryRun": True})

    assert run.report["status"] == "SUCCEEDED"
    steps = " | ".join(run.report["output"]["Steps"])
    assert "replace the root volume" in steps and "crash-consistent" in steps
    run.assert_unchanged()


def _set(**attributes: Any) -> Callable[[Engine], None]:
    def prepare(engine: Engine) -> None:
        instance = emulator.ec2_backend().get_instance(engine.ids["web"])
        for name, value in attributes.items():
            setattr(instance, name, value)

    return prepare


@pytest.mark.parametrize(
    "instance,prepare,field,reason",
    [
        (linux_instance(state="stopped"), None, "Mode", "replace-root needs"),
        (linux_instance(root_device_type="instance-store"), None, "InstanceId", "instance-store"),
        (linux_instance(), _set(instance_type="m5.metal"), "InstanceId", "bare metal"),
        (
            linux_instance(),
            _set(product_codes=[{"ProductCodeId": "abc123", "ProductCodeType": "marketplace"}]),
            "InstanceId",
            "AWS Marketplace product codes",
        ),
        (windows_instance(), None, "Mode", "resets Linux instances"),
    ],
)
def test_preflight_refuses_what_ec2_does_not_replace(
    run_scenario: RunScenario,
    instance: dict[str, Any],
    prepare: Callable[[Engine], None] | None,
    field: str,
    reason: str,
) -> None:
    run = run_scenario({"web": instance}, input=REPLACE, prepare=prepare)

    run.assert_refused(field, reason)


def _task_ends(outcome: str) -> Callable[[Engine], None]:
    def prepare(engine: Engine) -> None:
        engine.ssm_world.ebs.outcomes[engine.ids["web"]] = outcome

    return prepare


@pytest.mark.parametrize("outcome,stops", [("failed", 0), ("failed-detached", 1)])
def test_a_failed_replacement_leaves_or_restores_the_old_root(
    run_scenario: RunScenario, outcome: str, stops: int
) -> None:
    run = run_scenario(input=REPLACE, prepare=_task_ends(outcome))

    assert run.report["status"] == "FAILED"
    assert f"is {outcome}" in run.report["cause"], run.report["cause"]
    run.assert_restored("web", "running")
    assert run.instance()["booting_from"] == run.instance()["root_volume_id"]
    # failed-detached left no root volume: one attaches only to a stopped instance.
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == stops
    assert run.report["api_calls"].get("ec2:StartInstances", 0) == stops
    run.assert_nothing_left()  # the copy is deleted
    assert run.world["kept_root_volumes"] == {}
    assert run.world["locks"] == {}
    result = run.report["world"]["parameters"]
    recorded = result[f"/reset-access/{run.instance()['id']}/result"]["value"]
    assert f"ended {outcome}" in recorded and "deleted the copy" in recorded, recorded


def test_a_failure_after_the_replacement_puts_the_old_root_back(run_scenario: RunScenario) -> None:
    run = run_scenario(
        input=REPLACE,
        faults=[{"state": "WaitRootReplaced", "when": "after", "error": "InjectedFault"}],
    )

    assert run.report["status"] == "FAILED"
    run.assert_restored("web", "running")
    assert run.instance()["booting_from"] == run.instance()["root_volume_id"]
    # A second replacement, back to the old volume: one more reboot, still never stopped.
    assert run.report["api_calls"].get("ec2:CreateReplaceRootVolumeTask") == 2
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == 0
    assert run.world["reboots"]["web"] == 2
    run.assert_nothing_left()
    assert run.world["kept_root_volumes"] == {}


def test_an_aborted_run_is_put_back_by_the_janitor(run_scenario: RunScenario) -> None:
    run = run_scenario(input=REPLACE, abort_at="PublishResult")

    assert run.report["status"] == "ABORTED"
    run.assert_restored("web", "running")
    run.assert_nothing_left()
    assert run.world["locks"] == {}
    # The result says what the janitor put back: the replacement undone, the copy deleted.
    old = run.instance()["root_volume_id"]
    result = json.loads(
        run.world["parameters"][f"/reset-access/{run.instance()['id']}/result"]["value"]
    )
    assert result["RecordedBy"] == "janitor" and result["RolledBack"] is True, result
    did = result["RollbackDid"]
    assert [d.split(" ended ")[-1] for d in did if d.startswith("task ")] == ["succeeded"] * 2, did
    assert "(put the old root back)" in did[1]
    assert f"{old} is the root volume again" in did and did[-1].startswith("deleted the copy vol-")
