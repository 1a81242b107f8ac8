"""`reset-access start --targets` and `follow` of a fleet, end to end against
`python -m local serve` (the session's endpoint; its Team-tagged instances are this module's):
the fleet workflow started through the endpoint, its children, and the world after (each
instance back, each fetched key opens it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.checks import public_key_of
from local.volumes import read_authorized_keys
from tests.support.cli import Ran, Served, interrupted_follow, one_line_error
from tests.support.served_world import FLEET_WEB, SERVED

pytestmark = SERVED
WEB = FLEET_WEB


class Fleet(Served):
    def instance(self, name: str) -> dict[str, Any]:
        reservations = self.client("ec2").describe_instances(InstanceIds=[self.engine.ids[name]])
        return dict(reservations["Reservations"][0]["Instances"][0])

    def fleets(self) -> list[str]:
        sfn = self.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.engine.fleet_state_machine_arn)
        return [e["executionArn"] for e in listed["executions"]]

    def untouched(self, name: str) -> bool:
        """No reset started for the instance, and it is as the scenario made it."""
        sfn = self.client("stepfunctions")
        children = sfn.list_executions(stateMachineArn=self.engine.state_machine_arn)
        reset = any(e["name"].endswith(self.engine.ids[name]) for e in children["executions"])
        return not reset and self.unchanged(name)

    def unchanged(self, name: str) -> bool:
        """Running on its own root volume, with no tag a reset would add."""
        instance = self.instance(name)
        (root,) = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
        return (
            instance["State"]["Name"] == "running"
            and root["Ebs"]["VolumeId"] == self.engine.root_volumes[name]
            and {tag["Key"] for tag in instance["Tags"]} == {"Name", "Team"}
        )

    def opens(self, name: str, key_file: Path) -> bool:
        tree = self.engine.world.ssm_world.volume_trees[self.engine.root_volumes[name]]
        keys = read_authorized_keys(tree, self.engine.scenario.instances[name]["volume"])
        public = public_key_of(key_file.read_text()).split()[:2]
        return any(line.split()[:2] == public for line in keys["ec2-user"])


@pytest.fixture(scope="module")
def fleet(served: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The session's endpoint (tests/support/served_world.py: web0-2 of Team web, web2
    reachable by SSM; db; bad, whose reset fails on its own)."""
    url, engine = served
    return Fleet(url, engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def finished(fleet: Fleet) -> Ran:
    """The web fleet started by tag and followed to its end by the command."""
    return fleet.cli("start", "--targets", "tag:Team=web", "--max-concurrency", "2")


def test_a_fleet_by_tag_is_reset_and_each_key_opens_its_instance(
    fleet: Fleet, finished: Ran, tmp_path: Path
) -> None:
    assert finished.code == 0, finished.said
    assert "fleet succeeded: 3 succeeded, 0 notchanged, 0 failed, 0 notattempted of 3" in (
        finished.out
    )
    for name in WEB:
        instance_id = fleet.engine.ids[name]
        # The live table's last state and the summary's key parameter, per instance.
        rows = [line for line in finished.out.splitlines() if instance_id in line]
        assert any("SUCCEEDED" in row for row in rows), finished.out
        assert any(f"/ec2rl/openssh/{instance_id}/key" in row for row in rows), finished.out
        instance = fleet.instance(name)
        assert instance["State"]["Name"] == "running"
        (root,) = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
        assert root["Ebs"]["VolumeId"] == fleet.engine.root_volumes[name]
        key = tmp_path / f"{name}.pem"
        got = fleet.cli("get-key", instance_id, "--out", str(key))
        assert got.code == 0, got.said
        assert fleet.opens(name, key)
    assert fleet.engine.ids["db"] not in finished.out
    assert fleet.untouched("db")
    assert "PRIVATE KEY" not in finished.said


def test_a_fleet_with_a_failed_reset_exits_1_and_names_it(fleet: Fleet) -> None:
    ran = fleet.cli("--output", "json", "start", "--targets", "tag:Team=bad")
    assert ran.code == 1, ran.said
    assert "Traceback" not in ran.said
    # stderr: the live table (--output json), then the one-line error.
    assert ran.err.splitlines()[-1].startswith(
        "reset-access: the fleet did not succeed (InstancesFailed)"
    )
    record = json.loads(ran.out)  # pure JSON on stdout, the table on stderr
    assert record["Status"] == "FAILED"
    (line,) = record["Instances"]
    assert line["InstanceId"] == fleet.engine.ids["bad"]
    assert line["Outcome"] == "Failed"
    assert line["Error"] == "UnexpectedState"
    assert fleet.engine.ids["bad"] in ran.err
    # Rolled back: running again with its own root volume.
    instance = fleet.instance("bad")
    assert instance["State"]["Name"] == "running"
    (root,) = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
    assert root["Ebs"]["VolumeId"] == fleet.engine.root_volumes["bad"]


def test_input_the_fleet_would_refuse_starts_nothing(fleet: Fleet) -> None:
    before = fleet.fleets()
    for args, cause in (
        (("--max-concurrency", "0"), "MaxConcurrency: a whole number (at least 1)"),
        (("--max-errors", "150%"), "MaxErrors: a whole number"),
        (("--regions", "eu-west-1"), "--regions needs --accounts"),
        (("--accounts", "12345"), "TargetLocations[0].Accounts: account IDs of 12 digits"),
        (("--mode", "sideways"), "input refused (nothing was started): Mode"),
    ):
        ran = fleet.cli("start", "--targets", "tag:Team=web", *args)
        assert ran.code == 2, ran.said
        assert cause in one_line_error(ran)
    for given, said in (
        (("--targets", "Team=web"), "Targets[0].Key: 'InstanceIds' or 'tag:<key>'"),
        (("--targets", "tag:Team"), "expected tag:KEY=VALUE"),
        (("i-0123456789abcdef0", "--targets", "tag:Team=web"), "INSTANCE_ID or --targets"),
        (("i-0123456789abcdef0", "--max-errors", "1"), "need --targets"),
    ):
        ran = fleet.cli("start", *given)
        assert ran.code == 2, ran.said
        assert said in one_line_error(ran)
    assert fleet.fleets() == before


def test_a_fleet_that_matches_nothing_is_refused_with_exit_2(fleet: Fleet) -> None:
    ran = fleet.cli("start", "--targets", "tag:Team=nobody")
    assert ran.code == 2, ran.said
    assert "no instance matches" in one_line_error(ran)


def test_follow_recognizes_a_fleet_and_ctrl_c_leaves_it_running(fleet: Fleet) -> None:
    started = fleet.cli(
        "start",
        "--targets",
        f"InstanceIds={fleet.engine.ids['db']}",
        "--dry-run",
        "--no-follow",
    )
    assert started.code == 0, started.said
    arn = started.out.split()[1]
    code, err = interrupted_follow(arn, fleet.env, f"fleet execution {arn}")
    assert code == 130
    assert err.strip() == (
        "reset-access: interrupted: the fleet goes on (running resets finish, the rest start "
        f"as MaxConcurrency allows); follow it with: reset-access follow {arn}"
    )
    resumed = fleet.cli("follow", arn)
    assert resumed.code == 0, resumed.said
    assert "fleet succeeded: 0 succeeded, 1 notchanged" in resumed.out
    assert fleet.unchanged("db")  # a dry run
