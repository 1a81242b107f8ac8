"""The launch agents' edits as text in, text out: exactly the intended change, nothing else.

EC2Launch v2's agent-config.yml (YAML or JSON), EC2Launch v1's LaunchConfig.json and
EC2Config's config.xml; the same edits on whole volumes are in tests/rescue/test_windows_*.py.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rescue.windows.ec2config import edit_ec2config
from rescue.windows.ec2launch_v1 import edit_launch_config
from rescue.windows.ec2launch_v2 import edit_agent_config

yaml = pytest.importorskip("yaml")  # the tests' YAML reader; the agent itself has none


# --- EC2Launch v2: agent-config.yml ----------------------------------------------------------


@pytest.mark.parametrize(
    ("admin", "fixed"),
    [
        (
            "      - task: setAdminAccount\n",
            "      - task: setAdminAccount\n        inputs:\n          password:\n"
            "            type: random\n",
        ),
        (
            "      - task: setAdminAccount\n        inputs: {}\n",
            "      - task: setAdminAccount\n        inputs:\n          password:\n"
            "            type: random\n",
        ),
        (
            "      - task: setAdminAccount\n        inputs:\n          name: Admin\n",
            "      - task: setAdminAccount\n        inputs:\n          name: Admin\n"
            "          password:\n            type: random\n",
        ),
        (
            "      - task: setAdminAccount\n        inputs:\n          password:\n",
            "      - task: setAdminAccount\n        inputs:\n          password:\n"
            "            type: random\n",
        ),
        (
            "      - task: setAdminAccount\n        inputs:\n          password:\n"
            "            type:   # fill in\n",
            "      - task: setAdminAccount\n        inputs:\n          password:\n"
            "            type: random   # fill in\n",
        ),
        (
            "      -   task: 'setAdminAccount'\n          inputs:\n            password:\n"
            "              type: 'DONOTHING'\n",
            "      -   task: 'setAdminAccount'\n          inputs:\n            password:\n"
            "              type: 'random'\n",
        ),
    ],
)
def test_incomplete_set_admin_account_is_completed(admin: str, fixed: str) -> None:
    head = "version: 1.0\nconfig:\n  - stage: preReady\n    tasks:\n"
    tail = "  - stage: postReady\n    tasks:\n      - task: startSsm\n"
    new, notes = edit_agent_config(head + admin + tail, "agent-config.yml")
    assert new == head + fixed + tail
    assert notes


def test_empty_pre_ready_task_list() -> None:
    text = "config:\n  - stage: preReady\n    tasks: []   # nothing yet\n"
    new, _ = edit_agent_config(text, "agent-config.yml")
    assert new == (
        "config:\n  - stage: preReady\n    tasks:   # nothing yet\n"
        "      - task: setAdminAccount\n        inputs:\n          password:\n"
        "            type: random\n"
    )


@pytest.mark.parametrize(
    ("text", "added"),
    [
        ('{"config": [{"stage": "boot", "tasks": []}]}', '{"stage": "preReady"'),
        ('{"config": [{"stage": "preReady"}]}', '"tasks": [{"task": "setAdminAccount"'),
        (
            '{"config": [{"stage": "preReady", "tasks": [{"task": "x"}]}]}',
            '{"task": "setAdminAccount"',
        ),
        ('{"config": [{"stage": "preReady", "tasks": [{"task": "setAdminAccount"}]}]}', '"inputs"'),
    ],
)
def test_json_agent_config_gets_what_it_lacks(text: str, added: str) -> None:
    new, _ = edit_agent_config(text, "agent-config.yml")
    assert added in new
    pre = next(s for s in json.loads(new)["config"] if s["stage"] == "preReady")
    admin = next(t for t in pre["tasks"] if t["task"] == "setAdminAccount")
    assert admin["inputs"]["password"]["type"] == "random"
    assert edit_agent_config(new, "agent-config.yml") == (new, [])


# --- the edit, checked against a real YAML reader over many layouts ---------------------


class _IndentedLists(yaml.SafeDumper):  # type: ignore[misc,name-defined]
    """AWS's layout: lists indented under their key (PyYAML writes them at its column)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def intended(config: dict[str, Any]) -> dict[str, Any]:
    """What the agent should turn a parsed agent-config.yml into."""
    result = copy.deepcopy(config)
    stages: list[dict[str, Any]] = result["config"]
    admin = {"task": "setAdminAccount", "inputs": {"password": {"type": "random"}}}
    pre = [s for s in stages if s["stage"] == "preReady"]
    if not pre:
        later = [i for i, s in enumerate(stages) if s["stage"] in ("postReady", "userData")]
        stages.insert(later[0] if later else len(stages), {"stage": "preReady", "tasks": [admin]})
        return result
    for stage in pre:
        tasks = stage.get("tasks") or []
        stage["tasks"] = tasks
        found = [t for t in tasks if t["task"] == "setAdminAccount"]
        if not found:
            tasks.append(copy.deepcopy(admin))
        for task in found:
            inputs = task.get("inputs") or {}
            task["inputs"] = inputs
            password = inputs.get("password") or {}
            inputs["password"] = password
            if str(password.get("type", "")).lower() != "random":
                password.pop("data", None)
                password["type"] = "random"
    return result


TASKS = st.sampled_from(
    [
        {"task": "activateWindows", "inputs": {"activation": {"type": "amazon"}}},
        {"task": "setDnsSuffix", "inputs": {"suffixes": ["$REGION.ec2-utilities.amazonaws.com"]}},
        {"task": "setWallpaper", "inputs": {"path": "C:\\wall.jpg", "attributes": ["hostName"]}},
        {
            "task": "executeScript",
            "inputs": [
                {
                    "frequency": "once",
                    "type": "powershell",
                    "content": "echo 1\n- task: setAdminAccount\ntype: x\n",
                }
            ],
        },
        {"task": "startSsm"},
    ]
).map(copy.deepcopy)  # shared objects would make PyYAML write anchors
ADMINS = st.sampled_from(
    [
        None,
        {"task": "setAdminAccount"},
        {"task": "setAdminAccount", "inputs": {}},
        {"task": "setAdminAccount", "inputs": {"name": "Admin", "expire": True}},
        {"task": "setAdminAccount", "inputs": {"password": {}}},
        {"task": "setAdminAccount", "inputs": {"password": {"type": "random"}}},
        {"task": "setAdminAccount", "inputs": {"password": {"type": "static", "data": "p w#1"}}},
        {
            "task": "setAdminAccount",
            "inputs": {"password": {"data": "x", "type": "doNothing"}, "name": "Administrator"},
        },
    ]
).map(copy.deepcopy)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(
            st.sampled_from(["boot", "network", "preReady", "postReady", "userData"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    stages = []
    for name in names:
        tasks: list[Any] = draw(st.lists(TASKS, max_size=3))
        admin = draw(ADMINS) if name == "preReady" else None
        if admin is not None:
            tasks.insert(draw(st.integers(0, len(tasks))), admin)
        stage: dict[str, Any] = {"stage": name}
        keep_empty = draw(st.booleans())
        if tasks or keep_empty:
            stage["tasks"] = tasks
        stages.append(stage)
    return {"version": "1.0", "config": stages}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs(),
    indent=st.sampled_from([2, 4]),
    indented_lists=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_layout_gets_exactly_the_intended_change(
    config: dict[str, Any], indent: int, indented_lists: bool, newline: str
) -> None:
    dumper = _IndentedLists if indented_lists else yaml.SafeDumper
    text = yaml.dump(
        config, Dumper=dumper, indent=indent, sort_keys=False, default_flow_style=False
    ).replace("\n", newline)

    new, notes = edit_agent_config(text, "agent-config.yml")

    assert yaml.safe_load(new) == intended(config)
    assert edit_agent_config(new, "agent-config.yml") == (new, [])  # idempotent
    assert bool(notes) == (new != text)
    # Every line it did not mean to touch is still there, byte for byte and in order.
    old_lines, new_lines = text.split(newline), new.split(newline)
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=old_lines, b=new_lines).get_opcodes():
        if tag in ("replace", "delete"):
            for line in old_lines[i1:i2]:
                assert re.match(r"\s*(-\s+)?(type|data|tasks|inputs|password):", line), line


# --- EC2Launch v1: LaunchConfig.json ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"adminPasswordType":"DoNothing"}', '{"adminPasswordType":"Random"}'),
        (
            '{\r\n  "AdminPasswordType": "Specify",\r\n  "AdminPassword": "x"\r\n}',
            '{\r\n  "AdminPasswordType": "Random",\r\n  "AdminPassword": "x"\r\n}',
        ),
        (
            '{\n    "setWallpaper":  true,\n    "handleUserData":  true\n}',
            '{\n    "setWallpaper":  true,\n    "handleUserData":  true,\n'
            '    "adminPasswordType":  "Random"\n}',
        ),
        (
            '{\n    "setWallpaper":  true\n}',
            '{\n    "setWallpaper":  true,\n    "adminPasswordType":  "Random"\n}',
        ),
        ("{}", '{"adminPasswordType": "Random"}'),
        ('{"adminPasswordType": null}', '{"adminPasswordType": "Random"}'),
    ],
)
def test_launch_config_variants(text: str, expected: str) -> None:
    assert edit_launch_config(text, "LaunchConfig.json")[0] == expected


# --- EC2Config: config.xml ---------------------------------------------------------------


def test_edit_is_textual_not_reserialised() -> None:
    text = (
        "<?xml version='1.0'?>\n<!DOCTYPE x>\n<S a = 'q' >\n<Plugins>\n<Plugin ><Name>"
        "Ec2SetPassword</Name ><State >Disabled</State ></Plugin >\n<![CDATA[<Plugin>"
        "<Name>Ec2SetPassword</Name></Plugin>]]></Plugins>\n</S>\n"
    )
    new, note = edit_ec2config(text, "config.xml")
    assert new == text.replace(">Disabled<", ">Enabled<")
    assert note is not None
