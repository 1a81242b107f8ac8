"""`python -m local run`: the report other tools read, and refusals of bad scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.names import key_parameter
from local.__main__ import SCENARIOS, main
from local.checks import fingerprint, public_key_of

REPORT_FIELDS = {
    "status",
    "error",
    "cause",
    "output",
    "transitions",
    "api_calls",
    "history",
    "world",
}
WORLD_FIELDS = {"instances", "leftovers", "parameters", "authorized_keys", "backups"}


def test_run_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_path = tmp_path / "report.json"
    assert main(["run", str(SCENARIOS / "lost-key-linux.json"), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert set(report) >= REPORT_FIELDS  # other tools read these names
    assert set(report["world"]) >= WORLD_FIELDS
    assert report["status"] == "SUCCEEDED"
    assert set(report["world"]["instances"]["web"]) == {
        "id",
        "state",
        "root_volume_id",
        "root_attached_to",
        "root_attached_device",
        "booting_from",
    }
    printed = capsys.readouterr().out
    assert "Preflight" in printed and "PublishResult" in printed  # one line per state
    # Without reading the report: the outcome, the key, who it opens the instance for, backups.
    instance_id = report["world"]["instances"]["web"]["id"]
    key = report["world"]["parameters"][key_parameter(instance_id)]["value"]
    lines = printed.splitlines()
    assert any(line.startswith("outcome: SUCCEEDED (offline, linux) in ") for line in lines)
    assert (
        f"  key: {key_parameter(instance_id)} (SecureString), "
        f"fingerprint {fingerprint(public_key_of(key))}"
    ) in lines
    assert "  the key opens it for: ec2-user" in lines
    assert "users changed: ec2-user" in lines
    assert f"backups: AMI {report['world']['backups']['images'][0]}" in lines
    assert "left behind: nothing" in lines


def test_a_dry_run_prints_its_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = json.loads((SCENARIOS / "lost-key-linux.json").read_text())
    scenario["input"]["DryRun"] = True
    path = tmp_path / "dry.json"
    path.write_text(json.dumps(scenario))
    assert main(["run", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    plan = lines.index("dry run: nothing was changed; the plan:")
    assert lines[plan + 1].startswith("  1. create a temporary VPC")
    assert any(line.startswith("  3. stop i-") for line in lines[plan:])


def test_failed_execution_still_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = json.loads((SCENARIOS / "lost-key-linux.json").read_text())
    scenario["input"] = {"InstanceId": "i-0123456789abcdef0"}
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(scenario))
    report_path = tmp_path / "report.json"
    assert main(["run", str(path), "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["status"] == "FAILED"
    outcome = next(line for line in capsys.readouterr().out.splitlines() if "outcome" in line)
    assert outcome.startswith("outcome: FAILED: ") and "i-0123456789abcdef0" in outcome


def test_unknown_scenario_field_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = json.loads((SCENARIOS / "lost-key-linux.json").read_text())
    scenario["instances"]["web"]["colour"] = "blue"
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(scenario))
    assert main(["run", str(path)]) == 2
    assert "instances.web.colour: unknown field" in capsys.readouterr().err
