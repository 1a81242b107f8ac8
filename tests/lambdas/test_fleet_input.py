"""The fleet's input (lambdas/logic/fleet.py): SSM Automation's shape, refused by field."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.errors import InvalidInput
from lambdas.logic.fleet import (
    Location,
    check_reach,
    child_name,
    count_of,
    pages,
    parse_fleet_request,
)

WEB = [{"Key": "tag:Team", "Values": ["web"]}]


def test_the_runbook_shape_is_read_with_every_single_instance_key() -> None:
    request = parse_fleet_request(
        {
            "Targets": WEB,
            "TargetLocations": [
                {"Accounts": ["111122223333"], "Regions": ["us-east-1", "eu-west-1"]}
            ],
            "MaxConcurrency": "10",
            "MaxErrors": "10%",
            "Mode": "offline",
            "Backup": "snapshot",
        }
    )
    assert request.tags == {"Team": ["web"]}
    assert request.locations == (
        Location("111122223333", "us-east-1"),
        Location("111122223333", "eu-west-1"),
    )
    assert request.reset_input == {"Mode": "offline", "Backup": "snapshot"}
    assert request.filters() == [{"Name": "tag:Team", "Values": ["web"]}]


@pytest.mark.parametrize(
    ("fleet_input", "field"),
    [
        ({}, "Targets"),
        ({"Targets": [{"Key": "Name", "Values": ["x"]}]}, "Targets[0].Key"),
        ({"Targets": [{"Key": "InstanceIds", "Values": ["i-nope"]}]}, "InstanceId"),
        ({"Targets": WEB, "InstanceId": "i-0123456789abcdef0"}, "a fleet names instances"),
        ({"Targets": WEB, "MaxConcurrency": "0"}, "MaxConcurrency"),
        ({"Targets": WEB, "MaxErrors": "101%"}, "MaxErrors"),
        ({"Targets": WEB, "Mode": "sideways"}, "Mode"),
        ({"Targets": WEB, "TargetLocations": [{"Accounts": ["1"], "Regions": ["x"]}]}, "Accounts"),
        ({"Targets": WEB, "SharedKey": True}, "SharedKey"),
    ],
)
def test_a_bad_fleet_input_is_refused_naming_the_field(fleet_input: Any, field: str) -> None:
    with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_fleet_request(fleet_input)


def test_percentages_round_concurrency_up_and_the_error_budget_down() -> None:
    assert count_of("25%", 10, at_least=1) == 3
    assert count_of("1%", 10, at_least=1) == 1
    assert count_of("10%", 5, at_least=0) == 0
    assert count_of("10%", 20, at_least=0) == 2
    assert count_of("7", 3, at_least=1) == 7


def test_child_names_fit_step_functions_and_end_with_the_instance() -> None:
    name = child_name("x" * 80, "i-0123456789abcdef0", "-3333-eu-west-1")
    assert len(name) == 80
    assert name.endswith("-i-0123456789abcdef0-3333-eu-west-1")


def test_the_result_pages_each_fit_a_standard_parameter() -> None:
    lines = [
        {"InstanceId": f"i-{n:017x}", "Outcome": "Succeeded", "Pad": "x" * 150} for n in range(100)
    ]
    written = pages(lines)
    assert len(written) > 1
    assert all(len(page.encode()) <= 4096 for page in written)
    assert sum(page.count("InstanceId") for page in written) == 100


def test_a_multi_instance_alarm_becomes_one_reset_each_naming_the_alarm() -> None:
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": "ResetAccess-web-ssh",
            "state": {"value": "ALARM"},
            "configuration": {
                "metrics": [
                    {"metricStat": {"metric": {"dimensions": {"InstanceId": instance_id}}}}
                    for instance_id in ("i-0123456789abcdef0", "i-0123456789abcdef1")
                ]
                + [{"expression": "m1 + m2"}]
            },
        },
    }
    request = parse_fleet_request(event)
    assert request.instance_ids == ("i-0123456789abcdef0", "i-0123456789abcdef1")
    assert request.started_by_alarm == "ResetAccess-web-ssh"
    assert request.reset_input == {}


HERE = Location("123456789012", "us-east-1")


@pytest.mark.parametrize(
    ("accounts", "regions", "location", "says"),
    [
        (
            ("111122223333",),
            (),
            {"Accounts": ["444455556666"], "Regions": ["us-east-1"]},
            "TargetLocations: account 444455556666 is not in this stack's memberAccounts "
            "(111122223333); add it there and deploy again, or leave it out",
        ),
        (
            (),
            ("eu-west-1",),
            {"Accounts": ["111122223333"], "Regions": ["ap-southeast-2"]},
            "TargetLocations: Region ap-southeast-2 is not in this stack's memberRegions "
            "(eu-west-1); add it there and deploy again, or leave it out",
        ),
        # Within reach: listed, or the fleet's own account and Region; or no lists at all.
        (
            ("111122223333",),
            ("eu-west-1",),
            {"Accounts": ["111122223333", "123456789012"], "Regions": ["eu-west-1", "us-east-1"]},
            None,
        ),
        ((), (), {"Accounts": ["444455556666"], "Regions": ["ap-southeast-2"]}, None),
    ],
)
def test_a_location_outside_the_stacks_member_lists_is_refused(
    accounts: tuple[str, ...], regions: tuple[str, ...], location: dict[str, Any], says: str | None
) -> None:
    request = parse_fleet_request(
        {"Targets": [{"Key": "tag:Team", "Values": ["web"]}], "TargetLocations": [location]}
    )
    if says is None:
        check_reach(request, HERE, accounts, regions)
        return
    with pytest.raises(InvalidInput) as refused:
        check_reach(request, HERE, accounts, regions)
    assert str(refused.value) == says
