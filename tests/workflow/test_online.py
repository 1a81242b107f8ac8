"""Instances SSM can reach are reset where they run: no stop, no helper, no network. Mode
offline still takes the helper path; Mode online on an unreachable instance is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.asl_paths import fault_points, mode_steps
from tests.support.workflow import OLD_KEY, Run, RunScenario, linux_instance

# What the helper path does and the online path never may.
HELPER_PATH_CALLS = (
    "ec2:StopInstances",
    "ec2:StartInstances",
    "ec2:RunInstances",
    "ec2:CreateVpc",
    "ec2:DetachVolume",
    "ec2:AttachVolume",
    "ec2:CreateImage",
    "ec2:TerminateInstances",
)
ONLINE_STATES = [
    "Preflight",
    "Route",
    "BackupOnline",
    "CreateKeyOnline",
    "RunRescueOnline",
    "WaitRescueOnline",
    "PublishResult",
    "Done",
]


def windows_instance(**overrides: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "platform": "windows",
        "state": "running",
        "root_device": "/dev/sda1",
        "ssm": True,
        "volume": {"windows_agent": "ec2launch-v2"},
    }
    instance.update(overrides)
    return instance


def result(run: Run) -> dict[str, Any]:
    parameter = run.world["parameters"][f"/reset-access/{run.instance()['id']}/result"]
    return dict(json.loads(parameter["value"]))


def assert_never_stopped(run: Run) -> None:
    """Running before, running after, and no call that could have stopped or moved it."""
    assert run.engine.world_before["instances"]["web"]["state"] == "running"
    run.assert_restored("web", "running")
    made = {call for call in run.report["api_calls"] if call in HELPER_PATH_CALLS}
    assert made == set(), made
    assert "Prepare" not in run.states_entered()


@pytest.mark.parametrize("mode", ["auto", "online"])
def test_linux_online_adds_the_key_without_a_stop(run_scenario: RunScenario, mode: str) -> None:
    run = run_scenario(
        {"web": linux_instance(ssm=True)}, input={"InstanceId": "@web", "Mode": mode}
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.states_entered() == ONLINE_STATES
    assert_never_stopped(run)
    run.assert_nothing_left()
    run.assert_key_opens()
    run.assert_no_secret_leaked()
    assert run.world["authorized_keys"]["web"]["ec2-user"][0] == OLD_KEY
    # The agent ran on the instance itself, on /, with the public half only.
    [sent] = run.engine.ssm_world.commands_sent
    assert (sent["Platform"], sent["Target"]) == ("linux", "/")
    assert sent["PublicKey"].startswith("ssh-rsa ")
    outcome = result(run)
    assert (outcome["Mode"], outcome["Users"]) == ("online", ["ec2-user"])
    # Online the backup is a snapshot of the running root volume, taken without a reboot.
    assert run.world["backups"] == {"images": [], "snapshots": [outcome["BackupSnapshotId"]]}


def test_linux_online_with_given_public_key(run_scenario: RunScenario) -> None:
    mine = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJlc2V0YWNjZXNzdGVzdGtleXJlc2V0YWNjZXNzdDE= me@laptop"
    )
    run = run_scenario(
        {"web": linux_instance(ssm=True)},
        input={"InstanceId": "@web", "PublicKey": mine, "Backup": "none"},
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert_never_stopped(run)
    assert run.key() is None
    assert run.world["authorized_keys"]["web"]["ec2-user"] == [OLD_KEY, mine]
    assert run.world["backups"] == {"images": [], "snapshots": []}


def test_windows_online_resets_the_password_with_aws_tool(run_scenario: RunScenario) -> None:
    run = run_scenario({"web": windows_instance()})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.states_entered() == ONLINE_STATES
    assert_never_stopped(run)
    run.assert_nothing_left()
    instance_id = run.instance()["id"]
    name = f"/EC2Rescue/Passwords/{instance_id}"
    password = run.world["parameters"][name]
    assert password["type"] == "SecureString" and len(password["value"]) >= 16
    assert run.engine.ssm_world.windows_passwords_reset == [instance_id]
    # AWS's own document, ResetAccess, with the stack's key; never our agent.
    [sent] = run.engine.ssm_world.commands_sent
    assert sent["DocumentName"] == "AWSSupport-RunEC2RescueForWindowsTool"
    assert sent["Command"] == "ResetAccess"
    assert run.engine.kms_key_arn.endswith(f":key/{sent['Parameters']}")
    outcome = result(run)
    assert (outcome["Mode"], outcome["Platform"]) == ("online", "windows")
    assert outcome["PasswordParameter"] == name
    assert outcome["KeyParameter"] is None and outcome["PasswordEnabledImageId"] is None
    assert any(
        f"get-parameter --name {name} --with-decryption" in line for line in outcome["GetPassword"]
    )
    # The password itself is nowhere but in its SecureString.
    places = [
        json.dumps(run.report["history"]),
        json.dumps(run.report["output"]),
        run.engine.logs.getvalue(),
        json.dumps(run.engine.ssm_world.commands_sent),
        json.dumps([(i.stdout, i.stderr) for i in run.engine.ssm_world.invocations.values()]),
    ]
    assert not any(password["value"] in text for text in places)


def test_mode_offline_takes_the_helper_path_on_a_reachable_instance(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario(
        {"web": linux_instance(ssm=True)}, input={"InstanceId": "@web", "Mode": "offline"}
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert "Prepare" in run.states_entered() and "RunRescueOnline" not in run.states_entered()
    calls = run.report["api_calls"]
    assert (calls["ec2:RunInstances"], calls["ec2:StopInstances"], calls["ec2:StartInstances"]) == (
        1,
        1,
        1,
    )
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()
    # The agent ran on the helper, against the volume, not on the instance.
    [sent] = run.engine.ssm_world.commands_sent
    assert sent["Target"] == run.instance()["root_volume_id"]
    assert result(run)["Mode"] == "offline"


@pytest.mark.parametrize(
    "instance", [linux_instance(), windows_instance(ssm=False)], ids=["linux", "windows"]
)
def test_mode_online_on_unreachable_instance_is_refused(
    run_scenario: RunScenario, instance: dict[str, Any]
) -> None:
    run = run_scenario({"web": instance}, input={"InstanceId": "@web", "Mode": "online"})

    assert run.report["status"] == "FAILED"
    assert run.states_entered() == ["Preflight", "ReadRefusal", "Refused"]
    assert "Mode: online needs" in run.report["cause"], run.report["cause"]
    run.assert_unchanged()


def test_stopped_instance_is_not_reachable_so_auto_goes_offline(run_scenario: RunScenario) -> None:
    run = run_scenario({"web": linux_instance(ssm=True, state="stopped")})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert result(run)["Mode"] == "offline"
    run.assert_restored("web", "stopped")


# A fault before a Task that directly follows another with the same Catch meets the world a
# fault after that one does (tests/faults/test_fault_matrix.py says why): CreateKeyOnline and
# WaitRescueOnline are faulted after their side effect only.
ONLINE_FAULTS = fault_points(mode_steps("online"))


@pytest.mark.parametrize("platform", ["linux", "windows"])
@pytest.mark.parametrize(("state", "when"), ONLINE_FAULTS, ids=["-".join(f) for f in ONLINE_FAULTS])
def test_online_failure_moves_nothing_and_releases_the_lock(
    run_scenario: RunScenario, platform: str, state: str, when: str
) -> None:
    instance = linux_instance(ssm=True) if platform == "linux" else windows_instance()
    run = run_scenario(
        {"web": instance}, faults=[{"state": state, "when": when, "error": "AwsError"}]
    )

    assert run.report["status"] == "FAILED"
    states = run.states_entered()
    assert states[-4:] == ["Rollback", "CleanUpAfterFailure", "RecordFailure", "Failed"], states
    assert_never_stopped(run)
    run.assert_nothing_left()
    # Rollback read the world and found nothing to move: it changed nothing.
    rollback_calls = run.engine.calls_by_function["ResetAccess-Rollback"]
    # EC2: reads only, for where things are. The lock table: the fence, one call that closes
    # the run's in-flight marks and reads them.
    ec2_calls = [call for call in rollback_calls if call.startswith("ec2:")]
    assert ec2_calls and all(c.startswith(("ec2:Describe", "ec2:Get")) for c in ec2_calls), (
        rollback_calls
    )
    others = {call: n for call, n in rollback_calls.items() if call not in ec2_calls}
    assert others == {"dynamodb:UpdateItem": 1}, rollback_calls
    failure = result(run)
    assert failure["Outcome"] == "failed" and failure["LockReleased"] is True
    assert failure["RolledBack"] is True and failure["CleanedUp"] is True
    assert f"{run.instance()['id']} is running" in failure["Cause"]
    run.assert_no_secret_leaked()


def test_dry_run_online_describes_no_stop(run_scenario: RunScenario) -> None:
    run = run_scenario(
        {"web": linux_instance(ssm=True)}, input={"InstanceId": "@web", "DryRun": True}
    )

    assert run.report["status"] == "SUCCEEDED"
    plan = run.report["output"]
    assert (plan["Mode"], plan["Backup"]) == ("online", "snapshot")
    assert any("no stop" in step for step in plan["Steps"])
    assert not any(step.startswith("stop ") for step in plan["Steps"])
    run.assert_unchanged()


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_auto_falls_back_to_the_helper_when_the_online_reset_fails(
    run_scenario: RunScenario, platform: str
) -> None:
    instance = linux_instance(ssm=True) if platform == "linux" else windows_instance()
    run = run_scenario(
        {"web": instance},
        faults=[{"state": "WaitRescueOnline", "when": "before", "error": "RescueFailed"}],
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    states = run.states_entered()
    assert states.index("OnlineFailed") < states.index("FallBackOffline") < states.index("Prepare")
    run.assert_restored()
    run.assert_nothing_left()
    outcome = result(run)
    assert outcome["Mode"] == "offline"
    assert "injected RescueFailed" in outcome["OnlineError"]
    calls = run.report["api_calls"]
    assert (calls["ec2:StopInstances"], calls["ec2:StartInstances"]) == (1, 1)
    if platform == "linux":
        run.assert_key_opens()
        run.assert_no_secret_leaked()
    else:
        assert outcome["PasswordEnabledImageId"] in run.world["backups"]["images"]


def test_mode_online_does_not_fall_back(run_scenario: RunScenario) -> None:
    run = run_scenario(
        {"web": linux_instance(ssm=True)},
        input={"InstanceId": "@web", "Mode": "online"},
        faults=[{"state": "WaitRescueOnline", "when": "before", "error": "RescueFailed"}],
    )

    assert run.report["status"] == "FAILED"
    assert "FallBackOffline" not in run.states_entered()
    assert_never_stopped(run)
    run.assert_nothing_left()
    assert "injected RescueFailed" in result(run)["Cause"]
