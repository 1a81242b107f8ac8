"""A reset that fails on the served engine: the command says so, says what was put back, and
exits 1; history and status show the failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.scenario import Scenario
from tests.support.cli import Ran, aws_env, run

SCENARIO = Path(__file__).resolve().parents[2] / "local/scenarios/lost-key-linux.json"
serve = pytest.importorskip("local.serve")


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ran, dict[str, str], str]]:
    spec = json.loads(SCENARIO.read_text())
    # The agent's run fails after it ran: the workflow rolls back and records the failure.
    spec["faults"] = [{"state": "RunRescue", "when": "after", "error": "InjectedFault"}]
    path = tmp_path_factory.mktemp("scenario") / "failing.json"
    path.write_text(json.dumps(spec))
    with serve.served(Scenario.load(path)) as (url, engine):
        env = aws_env(tmp_path_factory.mktemp("home"), url)
        instance_id = engine.ids["web"]
        yield run(["start", instance_id, "--poll-seconds", "0.2"], env), env, instance_id


def test_a_failed_reset_exits_1_and_says_what_was_put_back(
    failed: tuple[Ran, dict[str, str], str],
) -> None:
    ran, _, instance_id = failed
    assert ran.code == 1, ran.said
    assert "Rollback" in ran.out
    assert "execution FAILED: InjectedFault" in ran.out
    assert "Traceback" not in ran.said
    assert ran.err.strip().startswith("reset-access: the reset did not succeed (FAILED)")
    assert f"reset-access status {instance_id}" in ran.err


def test_history_and_status_show_the_failure(failed: tuple[Ran, dict[str, str], str]) -> None:
    _, env, instance_id = failed
    listed = run(["history", instance_id], env)
    assert listed.code == 0
    assert "failed" in listed.out
    assert "InjectedFault" in listed.out
    status = run(["status", instance_id], env)
    assert status.code == 0
    assert f"reset of {instance_id} failed: InjectedFault" in status.out
    assert "rolled back   True" in status.out
