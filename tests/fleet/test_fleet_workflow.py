"""The fleet workflow (statemachine/fleet.py) run on the local engine: one ResetAccess execution
per instance of the fleet, and the world after, per instance."""

from __future__ import annotations

import copy
import json
from typing import Any

from lambdas.logic.fleet import fleet_parameter
from local.engine import Engine
from local.scenario import Scenario
from tests.support.workflow import Run, linux_instance, windows_instance

WEB = [{"Key": "tag:Team", "Values": ["web"]}]


def run_fleet(
    instances: dict[str, Any],
    fleet_input: dict[str, Any],
    faults: list[dict[str, Any]] | None = None,
    abort_at: str | None = None,
) -> Run:
    scenario = Scenario.from_dict(
        {
            "workflow": "fleet",
            "instances": copy.deepcopy(instances),
            "input": fleet_input,
            "faults": faults or [],
            **({"abort_at": abort_at} if abort_at else {}),
        }
    )
    engine = Engine(scenario)
    return Run(engine, engine.run())


def web(count: int) -> dict[str, Any]:
    return {f"web{n}": linux_instance(tags={"Team": "web"}) for n in range(count)}


def children(run: Run) -> dict[str, str]:
    """Scenario instance name -> its child execution's status."""
    return {e["instance"]: e["status"] for e in run.report["executions"]}


def fleet_result(run: Run) -> list[dict[str, Any]]:
    """Every instance's line of the fleet result, read back from Parameter Store."""
    parameters = run.world["parameters"]
    summary = json.loads(parameters[fleet_parameter(run.engine.execution_name)]["value"])
    return [line for page in summary["Pages"] for line in json.loads(parameters[page]["value"])]


def test_a_mixed_fleet_by_tag_is_reset_and_the_rest_is_untouched() -> None:
    instances = {
        "offline": linux_instance(tags={"Team": "web"}),
        "online": linux_instance(ssm=True, tags={"Team": "web"}),
        "windows": windows_instance(tags={"Team": "web"}),
        "stopped": linux_instance(state="stopped", tags={"Team": "web"}),
        "db": linux_instance(tags={"Team": "db"}),
    }
    run = run_fleet(instances, {"Targets": WEB, "MaxConcurrency": "2"})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    reset = ("offline", "online", "windows", "stopped")
    assert children(run) == dict.fromkeys(reset, "SUCCEEDED")
    for name in reset:
        run.assert_restored(name)
    assert run.instance("stopped")["state"] == "stopped"
    for name in ("offline", "online", "stopped"):
        run.assert_key_opens(name)
    # The Windows instance's new password comes from its launch agent at the next boot.
    assert run.world["instances"]["db"] == run.engine.world_before["instances"]["db"]
    assert run.world["authorized_keys"]["db"] == run.engine.world_before["authorized_keys"]["db"]
    run.assert_nothing_left()
    assert run.world["locks"] == {}, "the instances' locks and the fleet's error count are gone"
    lines = {line["InstanceId"]: line for line in fleet_result(run)}
    assert {line["Outcome"] for line in lines.values()} == {"Succeeded"}
    assert set(lines) == {run.instance(name)["id"] for name in reset}
    assert lines[run.instance("offline")["id"]]["KeyParameter"].endswith("/key")


def test_max_concurrency_bounds_the_children_running_at_once() -> None:
    # One more instance than the bound: each reset is a full run, so no more are needed.
    run = run_fleet(web(3), {"Targets": WEB, "MaxConcurrency": 2})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert len(run.report["executions"]) == 3
    # From the children's start and stop times as Step Functions recorded them.
    assert run.report["max_running"] == 2


def test_a_percentage_of_max_concurrency_is_of_the_targets() -> None:
    # 50% of the 2 targets is 1; read as a count (50) or of anything larger, both would run.
    run = run_fleet(web(2), {"Targets": WEB, "MaxConcurrency": "50%"})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.report["max_running"] == 1


def test_max_errors_stops_starting_new_resets_and_names_those_not_attempted() -> None:
    instances = web(4)
    run = run_fleet(
        instances,
        {"Targets": WEB, "MaxConcurrency": 1, "MaxErrors": 1},
        # A fault no Retry absorbs, in two instances' runs, after the instance was stopped.
        faults=[
            {
                "state": "DetachRootVolume",
                "when": "before",
                "error": "UnexpectedState",
                "instance": n,
            }
            for n in instances
        ],
    )

    assert run.report["status"] == "FAILED"
    assert run.report["error"] == "MaxErrorsExceeded"
    lines = fleet_result(run)
    outcomes = [line["Outcome"] for line in lines]
    # One at a time: the first failure is within MaxErrors, the second exceeds it.
    assert outcomes == ["Failed", "Failed", "NotAttempted", "NotAttempted"]
    by_id = {run.instance(name)["id"]: name for name in instances}
    not_attempted = [
        by_id[line["InstanceId"]] for line in lines if line["Outcome"] == "NotAttempted"
    ]
    for name in not_attempted:
        assert run.world["instances"][name] == run.engine.world_before["instances"][name]
        assert (
            run.world["authorized_keys"][name] == run.engine.world_before["authorized_keys"][name]
        )
        assert run.instance(name)["id"] in run.report["cause"]
    assert len(run.report["executions"]) == 2
    for name in by_id.values():
        run.assert_restored(name)
    assert "UnexpectedState" in {line.get("Error") for line in lines}
    run.assert_nothing_left()


def test_an_aborted_fleet_stops_its_children_and_the_janitor_restores_each() -> None:
    run = run_fleet(web(2), {"Targets": WEB, "MaxConcurrency": 2}, abort_at="DetachRootVolume")

    assert run.report["status"] == "ABORTED"
    statuses = children(run)
    assert set(statuses.values()) == {"ABORTED"}, statuses
    assert len(run.report["janitor"]) == len(statuses)
    for name in statuses:
        run.assert_restored(name)
    run.assert_nothing_left()
    locks = run.world["locks"]
    assert not [key for key in locks if key.startswith("i-")], locks


def test_more_new_vpcs_at_once_than_a_region_holds_is_refused_before_any_reset() -> None:
    run = run_fleet(web(5), {"Targets": WEB, "MaxConcurrency": 5})

    assert run.report["status"] == "FAILED"
    assert "SelectedInstanceSubnet" in run.report["cause"], run.report["cause"]
    assert run.report["executions"] == []
    assert run.world["locks"] == {}


def test_a_fleet_in_its_instances_subnets_runs_five_at_once() -> None:
    run = run_fleet(
        web(5), {"Targets": WEB, "MaxConcurrency": 5, "SubnetId": "SelectedInstanceSubnet"}
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.report["max_running"] >= 4
    for name in ("web0", "web4"):
        run.assert_restored(name)
        run.assert_key_opens(name)
    run.assert_nothing_left()


def test_a_fleet_input_error_is_refused_before_any_reset() -> None:
    run = run_fleet(web(1), {"Targets": WEB, "MaxErrors": "150%"})

    assert run.report["status"] == "FAILED"
    assert "MaxErrors" in run.report["cause"]
    assert run.report["executions"] == []
    assert run.world["instances"] == run.engine.world_before["instances"]
