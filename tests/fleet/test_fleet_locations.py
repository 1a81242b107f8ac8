"""A fleet across two accounts and two Regions on the local engine: the real fleet and
ResetAccess definitions, each child execution and each function in its instance's account and
Region (member deployments, stacks/member.py, where the fleet's account is not), every call
under its own role's policy and every AssumeRole under the role's trust policy."""

from __future__ import annotations

import copy
import json
from typing import Any

from lambdas.logic.fleet import fleet_parameter
from local.engine import Engine
from local.scenario import Scenario
from tests.support.workflow import Run, linux_instance

HOME = "123456789012"
MEMBER = "111122223333"
NOWHERE = "444455556666"
WEB = [{"Key": "tag:Team", "Values": ["web"]}]
PLACES = {
    "home": (HOME, "us-east-1"),
    "home_eu": (HOME, "eu-west-1"),
    "member": (MEMBER, "us-east-1"),
    "member_eu": (MEMBER, "eu-west-1"),
}


def world() -> Engine:
    """One instance tagged web in each location, and one tagged db in the member's eu-west-1."""
    instances = {
        name: linux_instance(tags={"Team": "web"}, account=account, region=region)
        for name, (account, region) in PLACES.items()
    }
    instances["db"] = linux_instance(tags={"Team": "db"}, account=MEMBER, region="eu-west-1")
    return Engine(
        Scenario.from_dict(
            {"workflow": "fleet", "instances": copy.deepcopy(instances), "input": {}}
        )
    )


def fleet_input(locations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Targets": WEB,
        "TargetLocations": locations,
        "MaxConcurrency": 4,
        "SubnetId": "SelectedInstanceSubnet",
    }


def test_two_accounts_and_two_regions_in_one_run() -> None:
    """One world for two fleet runs (a world of four locations takes longer to build than a
    refused run takes): first one naming an account without the member stack, then the fleet."""
    engine = world()
    with engine.session() as execute:
        refused = Run(
            engine,
            execute(
                fleet_input(
                    [
                        {"Accounts": [HOME, MEMBER], "Regions": ["us-east-1"]},
                        {"Accounts": [NOWHERE], "Regions": ["us-east-1"]},
                    ]
                )
            ),
        )
        run = Run(
            engine,
            execute(
                fleet_input([{"Accounts": [HOME, MEMBER], "Regions": ["us-east-1", "eu-west-1"]}])
            ),
        )

    # Refused before any reset, naming the role it could not assume and what to deploy.
    assert refused.report["status"] == "FAILED"
    cause = refused.report["cause"]
    assert f"{NOWHERE}:role/ResetAccess-FleetMember-us-east-1" in cause, cause
    assert "deploy the member stack" in cause and "deployment=member" in cause
    assert refused.report["executions"] == []
    assert refused.world["instances"] == engine.world_before["instances"]

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    # Each child ran in its instance's account and Region, and succeeded.
    children = {e["instance"]: e for e in run.report["executions"]}
    assert {name: c["status"] for name, c in children.items()} == dict.fromkeys(PLACES, "SUCCEEDED")
    for name, (account, region) in PLACES.items():
        assert (children[name]["account"], children[name]["region"]) == (account, region)
        run.assert_restored(name)
        run.assert_key_opens(name)
    assert run.world["instances"]["db"] == run.engine.world_before["instances"]["db"]
    assert run.world["authorized_keys"]["db"] == run.engine.world_before["authorized_keys"]["db"]
    # Nothing left in any location: no helper, volume, key pair, lock or pending secret.
    run.assert_nothing_left()
    assert run.world["locks"] == {}
    # The fleet's result is in the fleet account's Parameter Store, one line per instance.
    summary = json.loads(
        run.world["parameters"][fleet_parameter(run.engine.execution_name)]["value"]
    )
    lines = [
        line
        for page in summary["Pages"]
        for line in json.loads(run.world["parameters"][page]["value"])
    ]
    assert {(line["InstanceId"], line["Account"], line["Region"]) for line in lines} == {
        (run.instance(name)["id"], *place) for name, place in PLACES.items()
    }
    assert {line["Outcome"] for line in lines} == {"Succeeded"}
    assert run.engine.iam.denied == []
