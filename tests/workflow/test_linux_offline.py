"""A Linux instance whose key is lost gets it back through the helper: the real ASL, end to end."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.subnets import subnet_with
from tests.support.workflow import OLD_KEY, Run, RunScenario, linux_instance


@pytest.mark.parametrize("state", ["running", "stopped"])
@pytest.mark.parametrize("root_device", ["/dev/xvda", "/dev/sda1"])
def test_lost_key_is_replaced_and_instance_comes_back(
    run_scenario: RunScenario, state: str, root_device: str
) -> None:
    run = run_scenario({"web": linux_instance(state=state, root_device=root_device)})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored("web", state)
    run.assert_nothing_left()
    run.assert_key_opens("web")
    # RSA-3072, ssh-keygen's default (lambdas/logic/keys.py).
    key = serialization.load_ssh_private_key((run.key() or "").encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    run.assert_no_secret_leaked()
    assert len(run.world["backups"]["images"]) == 1
    # The old key still works too: nothing the user had is taken away.
    assert run.world["authorized_keys"]["web"]["ec2-user"][0] == OLD_KEY
    stops = run.report["api_calls"].get("ec2:StopInstances", 0)
    starts = run.report["api_calls"].get("ec2:StartInstances", 0)
    # StopInstances is how StopInstance asks the state: for a stopped instance it changes
    # nothing and answers "stopped" (EC2 API reference). Only a running one is started again.
    assert (stops, starts) == ((1, 1) if state == "running" else (1, 0))


def test_instance_stops_only_once_its_helper_runs(linux_reset: Run) -> None:
    # Downtime starts at the stop: the helper's network and launch come before it.
    run = linux_reset
    history = run.report["history"]

    def at(kind: str, state: str) -> int:
        return next(
            i
            for i, e in enumerate(history)
            if e["type"] == kind
            and e.get("stateEnteredEventDetails", e.get("stateExitedEventDetails", {})).get("name")
            == state
        )

    assert at("TaskStateEntered", "LaunchHelper") < at("TaskStateExited", "WaitHelperLaunched")
    assert at("TaskStateExited", "WaitHelperLaunched") < at("TaskStateEntered", "StopInstance")
    run.assert_restored("web", "running")


def test_a_helper_that_cannot_launch_never_stops_the_instance(run_scenario: RunScenario) -> None:
    run = run_scenario(
        faults=[
            {
                "state": "LaunchHelper",
                "when": "before",
                "error": "InsufficientInstanceCapacity",
                "times": 1,
            }
        ]
    )

    assert run.report["status"] == "FAILED"
    assert "LaunchHelper" in run.report["cause"]
    assert run.report["api_calls"].get("ec2:StopInstances", 0) == 0
    run.assert_restored("web", "running")
    run.assert_nothing_left()


def test_result_parameter_tells_what_happened(linux_reset: Run) -> None:
    run = linux_reset
    instance_id = run.instance()["id"]

    result = json.loads(run.world["parameters"][f"/reset-access/{instance_id}/result"]["value"])
    assert result["Outcome"] == "succeeded"
    assert result["Users"] == ["ec2-user"]
    assert result["KeyParameter"] == f"/ec2rl/openssh/{instance_id}/key"
    assert result["BackupImageId"] == run.world["backups"]["images"][0]
    assert set(result["PhaseSeconds"]) >= {"Prepare", "Rescue", "Restore", "Total"}
    assert {k: v for k, v in run.report["output"].items() if k != "ResultParameter"} == result


def test_given_public_key_is_injected_and_no_private_key_is_made(run_scenario: RunScenario) -> None:
    mine = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJlc2V0YWNjZXNzdGVzdGtleXJlc2V0YWNjZXNzdDE= me@laptop"
    )
    run = run_scenario(input={"InstanceId": "@web", "PublicKey": mine})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.key() is None
    assert run.world["authorized_keys"]["web"]["ec2-user"] == [OLD_KEY, mine]
    run.assert_restored()
    run.assert_nothing_left()


def test_ed25519_key_type(run_scenario: RunScenario) -> None:
    run = run_scenario(input={"InstanceId": "@web", "KeyType": "ed25519"})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert "OPENSSH PRIVATE KEY" in (run.key() or "")
    run.assert_key_opens()


@pytest.mark.parametrize("backup,images,snapshots", [("snapshot", 0, 1), ("none", 0, 0)])
def test_backup_choice(run_scenario: RunScenario, backup: str, images: int, snapshots: int) -> None:
    run = run_scenario(input={"InstanceId": "@web", "Backup": backup})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert len(run.world["backups"]["images"]) == images
    assert len(run.world["backups"]["snapshots"]) == snapshots
    run.assert_restored()


@pytest.mark.parametrize("subnet", ["CreateNewVPC", "SelectedInstanceSubnet", "same-az-subnet"])
def test_helper_subnet_choices(run_scenario: RunScenario, subnet: str) -> None:
    # A given subnet must reach SSM (test_subnet_reach.py): a public one here.
    run = run_scenario(
        input={"InstanceId": "@web", "SubnetId": subnet},
        prepare=subnet_with("internet-gateway") if subnet == "same-az-subnet" else None,
    )
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()
    created_vpc = run.report["api_calls"].get("ec2:CreateVpc", 0)
    assert created_vpc == (1 if subnet == "CreateNewVPC" else 0)


def test_graviton_helper(run_scenario: RunScenario) -> None:
    # Xen helper types are refused in Preflight (tests/workflow/test_rescue_document_runs.py).
    run = run_scenario(input={"InstanceId": "@web", "HelperInstanceType": "m6g.medium"})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()


def test_dry_run_returns_the_plan_and_changes_nothing(run_scenario: RunScenario) -> None:
    run = run_scenario(input={"InstanceId": "@web", "DryRun": True})

    assert run.report["status"] == "SUCCEEDED"
    plan = run.report["output"]
    assert plan["Action"] == "dry-run"
    assert plan["RootDeviceName"] == "/dev/xvda"
    assert any("stop" in step for step in plan["Steps"])
    run.assert_unchanged()


def test_user_without_ssh_directory_gets_one(run_scenario: RunScenario) -> None:
    instance = linux_instance()
    instance["volume"]["users"] = [{"name": "ec2-user", "uid": 1000, "gid": 1000}]
    run = run_scenario({"web": instance})
    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_key_opens()
