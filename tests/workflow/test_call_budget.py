"""The AWS API call budget of a Linux reset (issue 12), counted by the local engine on the real
definition, handlers and agent: at most 80 calls offline, 25 online. A ceiling, not an exact
count: how often a poll asks depends on how long what it waits for takes."""

from __future__ import annotations

import functools

import pytest

from local.figures import RUNS, Figure, measure

BUDGETS = {"Linux offline": 80, "Linux online": 25}


@functools.cache
def measured(label: str) -> Figure:
    """One run per label for the module: each test reads its counts, none changes them."""
    return measure(label, dict(RUNS)[label])


def per_api(figure: Figure) -> str:
    ranked = sorted(figure.api_calls.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{call} {count}" for call, count in ranked)


@pytest.mark.parametrize("label", BUDGETS)
def test_a_linux_reset_stays_within_its_api_call_budget(label: str) -> None:
    figure = measured(label)

    assert figure.status == "SUCCEEDED", figure.status
    assert figure.total_calls <= BUDGETS[label], (
        f"{label}: {figure.total_calls} AWS API calls, over the budget of {BUDGETS[label]}: "
        f"{per_api(figure)}"
    )


def test_only_parallel_branches_pay_for_in_flight_marks() -> None:
    # Begin and end of each changing phase inside Prepare: PrepareNetwork, LaunchHelper,
    # CreateKey, StopInstance, Backup, DetachRootVolume (docs: README, How it works); and
    # the ending's seal, which every run pays once, as it paid the item's delete before.
    offline = measured("Linux offline")
    online = measured("Linux online")

    assert offline.api_calls.get("dynamodb:UpdateItem") == 12 + 1, per_api(offline)
    assert online.api_calls.get("dynamodb:UpdateItem", 0) == 1, per_api(online)
