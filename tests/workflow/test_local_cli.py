"""`python -m local run`: the report other tools read, and refusals of bad scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.__main__ import SCENARIOS, main

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


def test_failed_execution_still_exits_zero(tmp_path: Path) -> None:
    scenario = json.loads((SCENARIOS / "lost-key-linux.json").read_text())
    scenario["input"] = {"InstanceId": "i-0123456789abcdef0"}
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(scenario))
    report_path = tmp_path / "report.json"
    assert main(["run", str(path), "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["status"] == "FAILED"


def test_unknown_scenario_field_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = json.loads((SCENARIOS / "lost-key-linux.json").read_text())
    scenario["instances"]["web"]["colour"] = "blue"
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(scenario))
    assert main(["run", str(path)]) == 2
    assert "instances.web.colour: unknown field" in capsys.readouterr().err
