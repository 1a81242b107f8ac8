"""A Windows instance whose Administrator password is lost: through the same Linux helper, its
launch agent is made to set a new password at the next boot, a password-enabled AMI is made,
and the instance comes back as it was. The real ASL, the real agent on a real directory tree."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from local import volumes
from local.engine import Engine
from local.volumes import WINDOWS_AGENTS, WINDOWS_SYSTEM_FILES, read_tree
from tests.support.workflow import Run, RunScenario, run, windows_instance

AGENT_CONFIG = volumes.WINDOWS_AGENT_CONFIG_REL
RUN_ONCE = volumes.WINDOWS_RUN_ONCE_REL
LAUNCH_CONFIG = volumes.WINDOWS_LAUNCH_CONFIG_REL
EC2CONFIG = volumes.WINDOWS_EC2CONFIG_REL
STARTUP_SCRIPTS = "Windows/System32/GroupPolicy/Machine/Scripts/Startup"


@pytest.fixture
def run_scenario(tmp_path: Path) -> RunScenario:
    """As tests/conftest.py's, with the volumes kept in tmp_path so the test can read them."""
    return functools.partial(run, workdir=tmp_path)


def tree(run: Run, name: str = "web") -> Path:
    """The instance's root volume as the agent left it."""
    return run.engine.ssm_world.volume_trees[run.instance(name)["root_volume_id"]]


def result(run: Run) -> dict[str, Any]:
    parameter = run.world["parameters"][f"/reset-access/{run.instance()['id']}/result"]
    return dict(json.loads(parameter["value"]))


def images_for(run: Run, purpose: str) -> list[str]:
    return [
        image_id
        for image_id, image in run.world["images"].items()
        if image["tags"].get("Purpose") == purpose
    ]


def assert_agent_edited(root: Path, agent: str) -> None:
    """What each launch agent needs to set a new random password at its next boot."""
    if agent == "ec2launch-v2":
        config = (root / AGENT_CONFIG).read_text()
        task = config[config.index("task: setAdminAccount") :]
        assert "type: random" in task.split("- task:")[0]
        assert not (root / RUN_ONCE).exists(), "EC2Launch v2 runs once-tasks only without it"
    elif agent == "ec2launch-v1":
        config = json.loads((root / LAUNCH_CONFIG).read_bytes().decode("utf-8-sig"))
        assert config["adminPasswordType"] == "Random"
        assert list((root / STARTUP_SCRIPTS).iterdir()), "initialization is not scheduled"
    else:
        # The plugin itself, not the XML comment above the list that names it.
        plugins = (root / EC2CONFIG).read_text().split("<Plugins>", 1)[1]
        plugin = plugins[plugins.index("<Name>Ec2SetPassword</Name>") :]
        assert plugin.split("</Plugin>")[0].count("<State>Enabled</State>") == 1


@pytest.mark.parametrize("agent", WINDOWS_AGENTS)
def test_password_generation_is_enabled_and_instance_comes_back(
    run_scenario: RunScenario, agent: str
) -> None:
    run = run_scenario({"web": windows_instance(agent)})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    assert_agent_edited(tree(run), agent)
    # The rest of the system partition is byte for byte what it was.
    after = read_tree(tree(run))
    assert {rel: after.get(rel) for rel in WINDOWS_SYSTEM_FILES} == WINDOWS_SYSTEM_FILES

    outcome = result(run)
    instance_id = run.instance()["id"]
    assert outcome["Platform"] == "windows" and outcome["LaunchAgent"] == agent
    assert outcome["KeyParameter"] is None and run.key() is None
    [backup] = images_for(run, "backup")
    [password_ami] = images_for(run, "password-enabled")
    assert (outcome["BackupImageId"], outcome["PasswordEnabledImageId"]) == (backup, password_ami)
    assert sorted(run.world["backups"]["images"]) == sorted([backup, password_ami])
    image = run.world["images"][password_ami]
    assert image["name"].startswith(f"ResetAccess password-enabled {instance_id} ")
    assert image["tags"]["ResetAccess:Execution"] == run.engine.execution_name
    assert any(
        f"get-password-data --instance-id {instance_id} --priv-launch-key web-lost-key.pem" in line
        for line in outcome["GetPassword"]
    )
    assert any(password_ami in line for line in outcome["GetPassword"])
    assert {k: v for k, v in run.report["output"].items() if k != "ResultParameter"} == outcome

    calls = run.report["api_calls"]
    assert (calls["ec2:StopInstances"], calls["ec2:StartInstances"]) == (1, 1)
    assert calls["ec2:CreateImage"] == 2
    # The password AMI is made while the instance is still stopped, before it starts.
    states = run.states_entered()
    assert states.index("CreatePasswordAmi") < states.index("RestoreInstance")
    # No key pair for Windows: nothing was generated, nothing stored.
    sent = run.engine.ssm_world.commands_sent
    assert [(c["Platform"], c["Target"], c["PublicKey"]) for c in sent] == [
        ("windows", run.instance()["root_volume_id"], "")
    ]


def test_without_password_enabled_ami(run_scenario: RunScenario) -> None:
    run = run_scenario(
        {"web": windows_instance()}, input={"InstanceId": "@web", "CreatePasswordEnabledAmi": False}
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    assert images_for(run, "password-enabled") == []
    assert len(run.world["backups"]["images"]) == 1
    assert result(run)["PasswordEnabledImageId"] is None
    assert "CreatePasswordAmi" not in run.states_entered()
    assert_agent_edited(tree(run), "ec2launch-v2")


def test_stopped_instance_stays_stopped_and_result_says_to_start_it(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario({"web": windows_instance("ec2config", state="stopped")})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored("web", "stopped")
    assert "ec2:StartInstances" not in run.report["api_calls"]
    assert any("start-instances" in line for line in result(run)["GetPassword"])


def test_linux_runs_make_no_password_ami(run_scenario: RunScenario) -> None:
    run = run_scenario(input={"InstanceId": "@web", "CreatePasswordEnabledAmi": True})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert images_for(run, "password-enabled") == []
    assert "CreatePasswordAmi" not in run.states_entered()


def test_public_key_for_windows_is_refused(run_scenario: RunScenario) -> None:
    key = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJlc2V0YWNjZXNzdGVzdGtleXJlc2V0YWNjZXNzdDE= me@laptop"
    )
    run = run_scenario({"web": windows_instance()}, input={"InstanceId": "@web", "PublicKey": key})

    assert run.report["status"] == "FAILED"
    assert run.states_entered() == ["Preflight", "ReadRefusal", "Refused"]
    assert "PublicKey" in run.report["cause"] and "runs Windows" in run.report["cause"]
    run.assert_unchanged()


def test_volume_without_launch_agent_fails_and_is_put_back(run_scenario: RunScenario) -> None:
    def remove_agent(engine: Engine) -> None:
        root = engine.ssm_world.volume_trees[engine.root_volumes["web"]]
        (root / AGENT_CONFIG).unlink()

    run = run_scenario({"web": windows_instance()}, prepare=remove_agent)

    assert run.report["status"] == "FAILED"
    assert "no EC2 launch agent configuration" in run.report["cause"], run.report["cause"]
    assert "Rollback" in run.states_entered()
    run.assert_restored()
    run.assert_nothing_left()
    assert images_for(run, "password-enabled") == []


def test_dry_run_describes_the_windows_steps(run_scenario: RunScenario) -> None:
    run = run_scenario({"web": windows_instance()}, input={"InstanceId": "@web", "DryRun": True})

    assert run.report["status"] == "SUCCEEDED"
    steps = run.report["output"]["Steps"]
    assert any("launch agent" in step for step in steps)
    assert any("password-enabled AMI" in step for step in steps)
    run.assert_unchanged()


@pytest.mark.parametrize(
    ("state", "when"),
    [("CreatePasswordAmi", "before"), ("CreatePasswordAmi", "after"), ("RunRescue", "after")],
)
def test_failure_around_the_windows_steps_puts_everything_back(
    run_scenario: RunScenario, state: str, when: str
) -> None:
    run = run_scenario(
        {"web": windows_instance()}, faults=[{"state": state, "when": when, "error": "AwsError"}]
    )

    assert run.report["status"] == "FAILED"
    assert "Rollback" in run.states_entered()
    run.assert_restored()
    run.assert_nothing_left()
    failure = result(run)
    assert failure["Outcome"] == "failed" and failure["LockReleased"] is True


def test_a_retried_password_ami_call_makes_one_ami(run_scenario: RunScenario) -> None:
    run = run_scenario(
        {"web": windows_instance()},
        faults=[{"state": "CreatePasswordAmi", "when": "after", "error": "AwsTransient"}],
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert len(images_for(run, "password-enabled")) == 1
    assert run.report["api_calls"]["ec2:CreateImage"] == 2  # the backup and one password AMI


def test_no_key_pair_and_no_password_ami_is_refused(run_scenario: RunScenario) -> None:
    """Nobody could decrypt the new password: refuse before changing anything."""

    def launched_without_key(engine: Engine) -> None:
        from local.emulator import ec2_backend

        ec2_backend().get_instance(engine.ids["web"]).key_name = None

    run = run_scenario(
        {"web": windows_instance()},
        prepare=launched_without_key,
        input={"InstanceId": "@web", "CreatePasswordEnabledAmi": False},
    )

    assert run.report["status"] == "FAILED"
    assert run.states_entered() == ["Preflight", "ReadRefusal", "Refused"]
    assert "CreatePasswordEnabledAmi" in run.report["cause"]
    assert "has no key pair" in run.report["cause"]
    run.assert_unchanged()
