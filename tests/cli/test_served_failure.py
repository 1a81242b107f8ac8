"""A reset that fails on the served engine: the command says so, says what was put back, and
exits 1; history and status show the failure."""

from __future__ import annotations

from typing import Any

import pytest

from local.scenario import Fault
from tests.support.cli import Ran, aws_env, run
from tests.support.served_world import FAILING_INSTANCE, SERVED

pytestmark = SERVED


@pytest.fixture(scope="module")
def failed(
    served: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Ran, dict[str, str], str]:
    """On the session's endpoint, its instance `failing` reset by the command while the
    agent's run fails after it ran: the workflow rolls back and records the failure."""
    url, engine = served
    env = aws_env(tmp_path_factory.mktemp("home"), url)
    instance_id = engine.ids[FAILING_INSTANCE]
    # The command follows the execution to its end, so the fault holds for exactly this run.
    with engine.faults(Fault("RunRescue", "after", "InjectedFault")):
        ran = run(["start", instance_id, "--poll-seconds", "0.2"], env)
    return ran, env, instance_id


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
