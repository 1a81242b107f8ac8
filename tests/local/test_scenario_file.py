"""Scenario files are checked field by field: each mistake is refused naming its field, and a
valid file loads as written (local/scenario.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from local.scenario import Fault, Scenario, ScenarioError, task_states
from local.scenario_doc import markdown
from local.volumes import WINDOWS_AGENTS

VALID: dict[str, Any] = {
    "description": "every field",
    "instances": {
        "web": {
            "platform": "linux",
            "state": "stopped",
            "tags": {"Name": "web"},
            "volume": {
                "distro": "ubuntu2404",
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
USER = f"{WEB}.volume.users.0"
REFUSALS = [
    # unknown fields, each listing the known ones
    (
        _with("colour", 1),
        "scenario.colour: unknown field; known: description, workflow, instances, input",
    ),
    (_with(f"{WEB}.size", 1), "instances.web.size: unknown field; known: platform, state"),
    (_with(f"{WEB}.volume.size", 1), "instances.web.volume.size: unknown field; known: distro"),
    (_with(f"{USER}.groups", []), r"instances.web.volume.users\[0\].groups: unknown field"),
    (_with("faults.1.after", 1), r"faults\[1\].after: unknown field; known: state, when"),
    # missing
    (_with("input", ...), "input: required"),
    (_with(USER, {"uid": 1}), r"instances.web.volume.users\[0\].name: required"),
    (_with("faults.0.error", ...), r"faults\[0\].error: required"),
    (_with("instances", {}), "instances: at least one instance"),
    # wrong types, in JSON's terms
    (_with("instances", []), "instances: expected an object, not an array"),
    (_with(WEB, "linux"), "instances.web: expected an object, not a string"),
    (_with(f"{WEB}.volume", []), "instances.web.volume: expected an object, not an array"),
    (_with(f"{WEB}.encrypted", "yes"), "instances.web.encrypted: expected true or false, not a"),
    (_with(f"{WEB}.ssm", 1), "instances.web.ssm: expected true or false, not a number"),
    (_with(f"{WEB}.tags", {"a": 1}), "instances.web.tags.a: expected a string, not a number"),
    (_with(f"{USER}.uid", "1000"), r"instances.web.volume.users\[0\].uid: expected a whole number"),
    (_with(USER, "root"), r"instances.web.volume.users\[0\]: expected an object, not a string"),
    (_with("faults.1", "Backup"), r"faults\[1\]: expected an object, not a string"),
    (_with("faults.0.state", 1), r"faults\[0\].state: expected a string, not a number"),
    (_with("faults", {}), "faults: expected an array, not an object"),
    (_with("faults.0.times", 0), r"faults\[0\].times: input should be greater than 0"),
    # values out of their set
    (_with("instances.1web", {}), "instances.1web: names are letters, digits, _ and -"),
    (_with(f"{WEB}.platform", "bsd"), "instances.web.platform: 'linux' or 'windows', not 'bsd'"),
    (
        _with(f"{WEB}.state", "gone"),
        "instances.web.state: 'running', 'stopped', 'pending', 'stopping' or 'terminated', "
        "not 'gone'",
    ),
    (
        _with(f"{WEB}.volume.distro", "ubunto"),
        "instances.web.volume.distro: 'ubunto' is not a known distro; did you mean ubuntu2404?",
    ),
    (
        _with(f"{WEB}.volume.windows_agent", "EC2Launch v9"),
        "instances.web.volume.windows_agent: 'EC2Launch v9' is not a Windows launch agent; "
        f"known: {', '.join(WINDOWS_AGENTS)}",
    ),
    (_with("faults.0.when", "during"), r"faults\[0\].when: 'before' or 'after', not 'during'"),
    # states the workflow does not have, or where nothing runs
    (
        _with("faults.0.state", "Bakup"),
        r"faults\[0\].state: 'Bakup' is not a Task state of the workflow; did you mean Backup\?",
    ),
    (_with("abort_at", "Route"), "abort_at: 'Route' is not a Task state of the workflow; known"),
    (_with("eventual_consistency", "yes"), "eventual_consistency: true, or"),
    (_with("eventual_consistency", {"seed": -1}), "eventual_consistency: true, or"),
    (_with("eventual_consistency", {"lag": 1}), "eventual_consistency: true, or"),
    # where an instance lives: an account ID is 12 digits, a Region one moto knows
    (_with(f"{WEB}.account", "11112222333"), r"instances.web.account: '11112222333' is not an"),
    (_with(f"{WEB}.account", "1111-2222-3333"), r"instances.web.account: '1111-2222-3333' is no"),
    (
        _with(f"{WEB}.region", "eu-west-9"),
        "instances.web.region: 'eu-west-9' is not a Region; did you mean eu-west-",
    ),
]


@pytest.mark.parametrize(("data", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_each_mistake_is_refused_naming_its_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=f"^{message}"):
        Scenario.from_dict(data)


def test_every_mistake_is_reported_at_once_one_line_each() -> None:
    data = _with(f"{WEB}.volume.distro", "ubunto")
    data["faults"][0]["when"] = "during"
    data["colour"] = "red"
    with pytest.raises(ScenarioError) as refused:
        Scenario.from_dict(data)
    lines = str(refused.value).splitlines()
    assert sorted(line.split(":", 1)[0] for line in lines) == [
        "faults[0].when",
        "instances.web.volume.distro",
        "scenario.colour",
    ]


def test_the_task_states_are_the_definitions() -> None:
    """Faults and aborts name Task states, read from the definition: every phase's state is
    one, and a Choice or a Parallel is not (nothing runs there)."""
    states = task_states()
    assert {"Preflight", "Backup", "RunRescue", "ReattachRootVolume", "Rollback"} <= set(states)
    assert not {"Route", "Prepare", "Finish", "Done", "Refused"} & set(states)


def test_a_scenario_is_an_object() -> None:
    with pytest.raises(ScenarioError, match=r"^scenario: expected a JSON object$"):
        Scenario.from_dict([VALID])


def test_the_documented_format_is_the_model() -> None:
    """docs/scenarios.md is what `python -m local.scenario_doc` prints from the model."""
    documented = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    assert documented == markdown(), "regenerate: python -m local.scenario_doc > docs/scenarios.md"


def test_every_bundled_scenario_is_valid() -> None:
    for path in sorted(
        (Path(__file__).resolve().parents[2] / "local" / "scenarios").glob("*.json")
    ):
        Scenario.load(path)
