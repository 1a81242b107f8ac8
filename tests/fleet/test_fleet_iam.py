"""The fleet's functions run with their own policies (stacks/permissions.py) on the engine, and
each of their statements is needed by a fleet run: the fleet's half of tests/workflow/test_iam.py's
mutation test."""

from __future__ import annotations

from stacks.permissions import PERMISSIONS
from statemachine.phases import FLEET_PHASES
from tests.fleet.test_fleet_workflow import WEB, run_fleet, web


def test_each_fleet_statement_alone_allows_a_call_of_a_fleet_run() -> None:
    run = run_fleet(web(2), {"Targets": WEB, "MaxConcurrency": 2})

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert run.engine.iam.denied == []
    handlers = {phase.handler for phase in FLEET_PHASES}
    unneeded = [
        f"{handler}[{index}] {rule.actions}"
        for handler in sorted(handlers)
        for index, rule in enumerate(PERMISSIONS[handler])
        if (handler, index) not in run.engine.iam.sole_grants
    ]
    # Other accounts and Regions: no engine run takes them yet (the engine runs in one account
    # and Region); tests/fleet/test_elsewhere.py shows each of these statements needed there.
    assert unneeded == [
        "check_elsewhere[0] ('states:DescribeExecution',)",
        "check_elsewhere[1] ('sts:AssumeRole',)",
        "resolve_targets[1] ('sts:AssumeRole',)",
        "resolve_targets[2] ('states:DescribeStateMachine',)",
        "start_elsewhere[0] ('states:StartExecution',)",
        "start_elsewhere[1] ('sts:AssumeRole',)",
    ]
