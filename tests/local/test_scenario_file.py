"""Scenario files are checked field by field: each mistake is refused naming its field, and a
valid file loads as written (local/scenario.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.scenario import Fault, Scenario, ScenarioError
from local.volumes import WINDOWS_AGENTS

VALID: dict[str, Any] = {
    "description": "every field",
    "instances": {
        "web": {
            "platform": "linux",
            "state": "stopped",
            "tags": {"Name": "web"},
            "volume": {
                "distro": "ubuntu",
                "users": [{"name": "ubuntu", "uid": 1000, "authorized_keys": []}],
            },
        },
        "win_2": {"platform": "windows", "volume": {"windows_agent": WINDOWS_AGENTS[-1]}},
    },
    "input": {"InstanceId": "@web"},
    "faults": [
        {"state": "Backup", "when": "after", "error": "States.Timeout", "times": 2},
        {"state": "Preflight", "when": "before", "error": "Lambda.Unknown"},
    ],
    "abort_at": "StopInstance",
    "eventual_consistency": {"seed": 1, "max_lag": 0},
}


def test_a_valid_scenario_loads_as_written() -> None:
    scenario = Scenario.from_dict(copy.deepcopy(VALID))
    assert scenario.instances == VALID["instances"]
    assert scenario.input == VALID["input"]
    assert scenario.faults == [
        Fault("Backup", "after", "States.Timeout", 2),
        Fault("Preflight", "before", "Lambda.Unknown", 1),
    ]
    assert scenario.abort_at == "StopInstance"
    assert scenario.eventual_consistency == {"seed": 1, "max_lag": 0}
    assert Scenario.from_dict({"instances": {"a": {}}, "input": None}).faults == []


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with the field at a dotted path (list indexes as numbers) set, or removed (...)."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


WEB = "instances.web"
REFUSALS = [
    (_with("colour", 1), "scenario.colour: unknown field"),
    (_with("instances", {}), "instances: expected an object with at least one instance"),
    (_with("instances", []), "instances: expected an object with at least one instance"),
    (_with("instances.1web", {}), "instances.1web: names are letters, digits, _ and -"),
    (_with(WEB, "linux"), "instances.web: expected an object"),
    (_with(f"{WEB}.size", 1), "instances.web.size: unknown field"),
    (_with(f"{WEB}.platform", "bsd"), "instances.web.platform: linux or windows"),
    (
        _with(f"{WEB}.state", "gone"),
        "instances.web.state: running, stopped, pending, stopping or terminated",
    ),
    (_with(f"{WEB}.volume", []), "instances.web.volume: expected an object"),
    (_with(f"{WEB}.volume.size", 1), "instances.web.volume.size: unknown field"),
    (
        _with(f"{WEB}.volume.windows_agent", "EC2Launch v9"),
        f"instances.web.volume.windows_agent: one of {', '.join(WINDOWS_AGENTS)}",
    ),
    (_with(f"{WEB}.volume.users.0", {"uid": 1}), r"instances.web.volume.users\[0\]: needs a name"),
    (_with(f"{WEB}.volume.users.0", "root"), r"instances.web.volume.users\[0\]: needs a name"),
    (
        _with(f"{WEB}.volume.users.0.groups", []),
        r"instances.web.volume.users\[0\].groups: unknown field",
    ),
    (_with("faults.1", "Backup"), r"faults\[1\]: expected an object"),
    (_with("faults.1.after", 1), r"faults\[1\].after: unknown field"),
    (_with("faults.0.when", "during"), r"faults\[0\].when: before or after"),
    (_with("faults.0.state", 1), r"faults\[0\]: state and error are strings"),
    (_with("faults.0.error", ...), r"faults\[0\]: state and error are strings"),
    (_with("input", ...), r"input: required \(the execution input\)"),
    (_with("eventual_consistency", "yes"), "eventual_consistency: true, or"),
    (_with("eventual_consistency", {"seed": -1}), "eventual_consistency: true, or"),
    (_with("eventual_consistency", {"lag": 1}), "eventual_consistency: true, or"),
]


@pytest.mark.parametrize(("data", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_each_mistake_is_refused_naming_its_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=f"^{message}"):
        Scenario.from_dict(data)


def test_a_scenario_is_an_object() -> None:
    with pytest.raises(ScenarioError, match=r"^scenario: expected a JSON object$"):
        Scenario.from_dict([VALID])
