"""EC2's eventual consistency: a resource just created answers NotFound for a while.

AWS, Amazon EC2 Developer Guide, "Eventual consistency in the Amazon EC2 API": "if you run a
command to modify or describe the resource that you just created, its ID might not have
propagated throughout the system, and you will get an error responding that the resource does
not exist" (InvalidInstanceID.NotFound after RunInstances, InvalidGroup.NotFound,
InvalidRouteTableID.NotFound, ...). The engine answers so (local/consistency.py); the run must
still succeed and leave the same world as without the lag.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from local.consistency import EventualConsistency
from local.scenario import Scenario, ScenarioError
from tests.support.workflow import RunScenario

FAST_KEY = {"InstanceId": "@web", "KeyType": "ed25519"}


def test_engine_answers_not_found_for_a_new_resource_then_finds_it() -> None:
    lag = EventualConsistency(seed=3, max_lag=3)
    lag.after("ec2", "CreateSecurityGroup", {"GroupId": "sg-0123456789abcdef0"})
    expected = lag.lag_left["sg-0123456789abcdef0"]
    assert 1 <= expected <= 3
    revoke = {"GroupId": "sg-0123456789abcdef0", "IpPermissions": []}
    codes = []
    for _ in range(expected):
        with pytest.raises(ClientError) as refused:
            lag.before("ec2", "RevokeSecurityGroupEgress", revoke)
        codes.append(refused.value.response["Error"]["Code"])
    assert codes == ["InvalidGroup.NotFound"] * expected
    lag.before("ec2", "RevokeSecurityGroupEgress", revoke)  # propagated: EC2 knows it now
    # A filter is answered (with what EC2 knows), never refused; an older resource is known.
    lag.after("ec2", "RunInstances", {"Instances": [{"InstanceId": "i-0aaaaaaaaaaaaaaaa"}]})
    lag.before(
        "ec2",
        "DescribeInstances",
        {"Filters": [{"Name": "instance-id", "Values": ["i-0aaaaaaaaaaaaaaaa"]}]},
    )
    lag.before("ec2", "DescribeInstances", {"InstanceIds": ["i-0bbbbbbbbbbbbbbbb"]})
    with pytest.raises(ClientError, match=r"InvalidInstanceID\.NotFound"):
        lag.before("ec2", "DescribeInstances", {"InstanceIds": ["i-0aaaaaaaaaaaaaaaa"]})


def test_same_seed_same_lags() -> None:
    ids = [f"subnet-0{n:016x}" for n in range(20)]
    one, two = EventualConsistency(seed=7, max_lag=4), EventualConsistency(seed=7, max_lag=4)
    for resource_id in ids:
        one.after("ec2", "CreateSubnet", {"Subnet": {"SubnetId": resource_id}})
    for resource_id in reversed(ids):
        two.after("ec2", "CreateSubnet", {"Subnet": {"SubnetId": resource_id}})
    assert one.lag_left == two.lag_left
    assert set(one.lag_left.values()) == {1, 2, 3, 4}


def test_scenario_refuses_a_malformed_lag() -> None:
    with pytest.raises(ScenarioError, match="eventual_consistency"):
        Scenario.from_dict(
            {"instances": {"web": {}}, "input": {}, "eventual_consistency": {"seed": 1, "lag": 2}}
        )


@pytest.mark.parametrize("seed", [1])
def test_lost_key_run_succeeds_through_eventual_consistency(
    run_scenario: RunScenario, seed: int
) -> None:
    run = run_scenario(input=FAST_KEY, eventual_consistency={"seed": seed, "max_lag": 3})

    run.assert_one_clean_reset()
    injected = run.report["eventual_consistency"]
    codes = {call.split(":", 1)[1] for call in injected}
    # Every kind of resource this run creates and then names was, for a while, not found.
    assert codes >= {
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidInstanceID.NotFound",
    }, injected
