"""A helper in the caller's subnet must reach Systems Manager, or the run is refused up front.

AWS (Systems Manager User Guide, "Improve the security of EC2 instances by using VPC endpoints
for Systems Manager"; Amazon VPC User Guide, "Connect to the internet using an internet
gateway"): the SSM agent reaches ssm, ssmmessages and ec2messages over HTTPS, either through an
internet gateway from a public IP, through a NAT gateway, or through interface endpoints with
private DNS. Without any of them the helper never comes online: the instance would stay stopped
for the whole poll (~19 minutes) before the run gives up. The engine's helper comes online only
with such a path (local/network.py).
"""

from __future__ import annotations

import pytest

from tests.support.subnets import subnet_with
from tests.support.workflow import RunScenario, linux_instance

FAST_KEY = {"InstanceId": "@web", "KeyType": "ed25519", "SubnetId": "placeholder"}
REGION = "us-east-1"


@pytest.mark.parametrize("path", ["internet-gateway", "nat", "endpoints"])
def test_helper_in_a_given_subnet_reaches_ssm(run_scenario: RunScenario, path: str) -> None:
    run = run_scenario(input=dict(FAST_KEY), prepare=subnet_with(path))

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_nothing_left()
    run.assert_key_opens()
    assert run.report["api_calls"].get("ec2:CreateVpc", 0) == 0


@pytest.mark.parametrize(
    "path,missing",
    [
        ("private", "no active route to 0.0.0.0/0"),
        ("endpoints-without-private-dns", "ssm, ssmmessages, ec2messages"),
        ("endpoints-but-ec2messages", "private DNS for ec2messages"),
    ],
)
def test_subnet_with_no_way_to_ssm_is_refused_before_any_change(
    run_scenario: RunScenario, path: str, missing: str
) -> None:
    run = run_scenario(input=dict(FAST_KEY), prepare=subnet_with(path))

    run.assert_refused("SubnetId", "could not reach Systems Manager")
    cause = run.report["cause"]
    subnet = run.engine.scenario.input["SubnetId"]
    assert subnet in cause and missing in cause, cause
    # What to do instead, in the message itself.
    assert "CreateNewVPC" in cause and "interface endpoints" in cause, cause


def test_auto_mode_online_keeps_no_fallback_into_a_subnet_without_ssm(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario(
        {"web": linux_instance(ssm=True)},
        input={**FAST_KEY, "Mode": "auto", "DryRun": True},
        prepare=subnet_with("private"),
    )

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    plan = run.report["output"]  # DryRunPlan outputs the plan itself
    assert plan["Mode"] == "online" and plan["OfflineFallback"] is False, plan
    assert any("could not reach Systems Manager" in note for note in plan["Notes"]), plan
