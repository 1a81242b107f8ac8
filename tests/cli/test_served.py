"""The installed reset-access command end to end against `python -m local serve`: the real
definition, our handlers and the rescue agent behind an HTTP endpoint (the session's, whose
instance `cli` is this module's).
What is asserted is what a user sees and gets: exit codes, one-line errors, the summary, and the
world after (instance running with its root volume back, the fetched key opens it)."""

from __future__ import annotations

import base64
import json
import os
import pty
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lambdas.names import OPT_IN_TAG
from local.checks import public_key_of
from local.volumes import read_authorized_keys
from tests.support.cli import (
    COMMAND,
    Ran,
    Served,
    aws_env,
    clean_env,
    interrupted_follow,
    one_line_error,
    run,
)
from tests.support.served_world import CLI_INSTANCE, SERVED

pytestmark = SERVED


class World(Served):
    """The served endpoint, the engine behind it, and the environment a user would have;
    this module's instance."""

    def __init__(self, url: str, engine: Any, home: Path) -> None:
        super().__init__(url, engine, home)
        self.instance_id: str = engine.ids[CLI_INSTANCE]

    def instance(self) -> dict[str, Any]:
        reservations = self.client("ec2").describe_instances(InstanceIds=[self.instance_id])
        return dict(reservations["Reservations"][0]["Instances"][0])

    def authorized_keys(self) -> dict[str, list[str]]:
        tree = self.engine.world.ssm_world.volume_trees[self.engine.root_volumes[CLI_INSTANCE]]
        spec = self.engine.scenario.instances[CLI_INSTANCE]["volume"]
        return dict(read_authorized_keys(tree, spec))


@pytest.fixture(scope="module")
def world(served: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> World:
    url, engine = served
    return World(url, engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def finished(world: World) -> Ran:
    """One reset started and followed to its end by the command."""
    return world.cli("start", world.instance_id)


def test_start_follows_each_state_and_sums_up_the_result(world: World, finished: Ran) -> None:
    assert finished.code == 0, finished.said
    states = [line.split()[1] for line in finished.out.splitlines() if line[:2].isdigit()]
    # Each state once, with its time, in the order the run ended them.
    assert states[0] == "Preflight"
    assert {"StopInstance", "RunRescue", "WaitInitialState", "PublishResult"} <= set(states)
    assert f"reset of {world.instance_id} succeeded (offline)" in finished.out
    assert f"key           /ec2rl/openssh/{world.instance_id}/key" in finished.out
    assert "fingerprint   SHA256:" in finished.out
    assert "users         ec2-user" in finished.out
    assert "backup        ami-" in finished.out
    assert "downtime      " in finished.out
    assert f"get the key: reset-access get-key {world.instance_id} --out key.pem" in finished.out
    assert "BEGIN OPENSSH PRIVATE KEY" not in finished.said


def test_after_the_run_the_fetched_key_opens_the_instance(
    world: World, finished: Ran, tmp_path: Path
) -> None:
    assert finished.code == 0, finished.said
    out = tmp_path / "key.pem"
    got = world.cli("get-key", world.instance_id, "--out", str(out))
    assert got.code == 0, got.said
    assert "PRIVATE KEY" not in got.said
    assert out.stat().st_mode & 0o777 == 0o600
    public = public_key_of(out.read_text())
    assert any(
        line.split()[:2] == public.split()[:2] for line in world.authorized_keys()["ec2-user"]
    )
    instance = world.instance()
    assert instance["State"]["Name"] == "running"
    (root,) = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
    assert root["Ebs"]["VolumeId"] == world.engine.root_volumes[CLI_INSTANCE]
    again = world.cli("get-key", world.instance_id, "--out", str(out))
    assert again.code == 2
    assert "exists; choose another --out or pass --force" in one_line_error(again)


def test_get_key_to_stdout_only_when_it_is_not_a_terminal(world: World, finished: Ran) -> None:
    piped = world.cli("get-key", world.instance_id, "--out", "-")
    assert piped.code == 0
    assert piped.out.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [str(COMMAND), "get-key", world.instance_id, "--out", "-"],
            env=world.env,
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(secondary)
        shown = os.read(primary, 65536) if done.returncode == 0 else b""
    finally:
        os.close(primary)
    assert done.returncode == 2
    assert "writes the private key to stdout only when it is piped" in done.stderr
    assert b"PRIVATE" not in shown


def test_history_and_status_show_the_finished_reset(world: World, finished: Ran) -> None:
    arn = next(
        line.split()[1] for line in finished.out.splitlines() if line.startswith("execution")
    )
    listed = world.cli("history", world.instance_id)
    assert listed.code == 0
    assert arn in listed.out
    assert "succeeded" in listed.out
    status = world.cli("status", world.instance_id, "--output", "json")
    assert status.code == 0
    shown = json.loads(status.out)
    assert shown["Running"] is None
    assert shown["LastResult"]["ExecutionArn"] == arn
    assert shown["LastResult"]["Outcome"] == "succeeded"


def test_output_json_is_pure_json_on_stdout(world: World, finished: Ran, tmp_path: Path) -> None:
    # An OpenSSH ed25519 public key's shape (no one holds its private half).
    blob = b"".join(
        (
            struct.pack(">I", 11),
            b"ssh-ed25519",
            struct.pack(">I", 32),
            b"reset-access-cli-test-public-key",
        )
    )
    public = tmp_path / "me.pub"
    public.write_text(f"ssh-ed25519 {base64.b64encode(blob).decode()} me@laptop\n")
    ran = world.cli(
        "--output",
        "json",
        "start",
        world.instance_id,
        "--dry-run",
        "--backup",
        "snapshot",
        "--public-key-file",
        str(public),
    )
    assert ran.code == 0, ran.said
    record = json.loads(ran.out)
    assert record["Status"] == "SUCCEEDED"
    # The options reached the workflow: its plan says so.
    assert record["Result"]["Action"] == "dry-run"
    assert record["Result"]["Backup"] == "snapshot"
    assert record["Result"]["PublicKey"] == public.read_text().strip()
    assert record["StartedAt"].endswith("+00:00")
    assert "Preflight" in ran.err  # the progress went to stderr


def test_ctrl_c_stops_following_not_the_reset(world: World, finished: Ran) -> None:
    started = world.cli("start", world.instance_id, "--no-follow")
    assert started.code == 0, started.said
    arn = started.out.split()[1]
    code, err = interrupted_follow(arn, world.env, f"execution {arn}")
    assert code == 130
    assert err.strip() == (
        f"reset-access: interrupted: the reset goes on; follow it with: reset-access follow {arn}"
    )
    # Still running (it holds the lock), or just finished: status finds this execution.
    status = world.cli("status", world.instance_id)
    assert status.code == 0, status.said
    assert arn in status.out
    resumed = world.cli("follow", arn)
    assert resumed.code == 0, resumed.said
    assert "succeeded" in resumed.out


def test_a_start_preflight_refuses_exits_2(world: World) -> None:
    ran = world.cli("start", "i-0123456789abcdef0")
    assert ran.code == 2, ran.said
    assert "FAILED" in ran.out
    assert "Traceback" not in ran.said


def test_missing_stack_is_named(world: World) -> None:
    ran = world.cli("--stack", "Elsewhere", "start", world.instance_id)
    assert ran.code == 2
    assert "stack Elsewhere is not deployed in us-east-1" in one_line_error(ran)


def test_arm_alarm_tags_then_alarms_and_disarm_removes_both(world: World) -> None:
    armed = world.cli("arm-alarm", world.instance_id)
    assert armed.code == 0, armed.said
    # The instance's own: the session's world holds other modules' alarms.
    mine = f"ResetAccess-{world.instance_id}"
    alarms = world.client("cloudwatch").describe_alarms(AlarmNamePrefix=mine)
    (alarm,) = alarms["MetricAlarms"]
    assert alarm["AlarmName"] == f"ResetAccess-{world.instance_id}"
    assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": world.instance_id}]
    assert {"Key": OPT_IN_TAG, "Value": "true"} in world.instance().get("Tags", [])
    disarmed = world.cli("disarm-alarm", world.instance_id)
    assert disarmed.code == 0, disarmed.said
    assert not world.client("cloudwatch").describe_alarms(AlarmNamePrefix=mine)["MetricAlarms"]
    assert OPT_IN_TAG not in {t["Key"] for t in world.instance().get("Tags", [])}


def test_arm_alarm_on_a_missing_instance_changes_nothing(world: World) -> None:
    before = world.client("cloudwatch").describe_alarms()["MetricAlarms"]
    ran = world.cli("arm-alarm", "i-0123456789abcdef0")
    assert ran.code == 2
    assert "no instance i-0123456789abcdef0 in us-east-1" in one_line_error(ran)
    assert world.client("cloudwatch").describe_alarms()["MetricAlarms"] == before


def test_the_endpoint_gone_is_named(world: World, tmp_path: Path) -> None:
    gone = aws_env(tmp_path, "http://127.0.0.1:9")
    ran = run(["status", world.instance_id], gone)
    assert ran.code == 2
    assert "cannot reach http://127.0.0.1:9" in one_line_error(ran)


def test_profile_and_region_are_taken_as_the_aws_cli_takes_them(
    world: World, tmp_path: Path
) -> None:
    (tmp_path / "no-config").write_text("[profile dev]\nregion = us-east-1\n")
    (tmp_path / "no-credentials").write_text(
        "[dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = clean_env(tmp_path, AWS_ENDPOINT_URL=world.url)
    by_profile = run(["--profile", "dev", "status", world.instance_id], env)
    assert by_profile.code == 0, by_profile.said
    assert world.instance_id in by_profile.out
    # Region after the subcommand, credentials from the environment, no profile.
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    bare = clean_env(tmp_path / "elsewhere", AWS_ENDPOINT_URL=world.url, **keys)
    by_flag = run(["status", world.instance_id, "--region", "us-east-1"], bare)
    assert by_flag.code == 0, by_flag.said
