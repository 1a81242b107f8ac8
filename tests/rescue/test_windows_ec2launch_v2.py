"""EC2Launch v2 on directory trees: agent-config.yml edited in place, .run-once moved aside."""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from windows_fixtures import (
    AGENT_CONFIG_AWS,
    AGENT_CONFIG_CUSTOM,
    AGENT_CONFIG_JSON,
    AGENT_CONFIG_MARSHALLED,
    AGENT_CONFIG_REL,
    RUN_ONCE_REL,
    decode,
    encode,
    make_tree,
    snapshot,
    write,
)

from rescue.windows import ConfigParseError, enable_password_generation
from rescue.windows.ec2launch_v2 import edit_agent_config

yaml = pytest.importorskip("yaml")  # the tests' YAML reader; the agent itself has none

BAK = ".reset-access.bak"
AWS_STATIC = AGENT_CONFIG_AWS.replace(
    "            type: random\n", "            type: static\n            data: S3cret!pw\n"
)


def changed_only(before: dict[str, bytes], after: dict[str, bytes]) -> dict[str, Any]:
    """Files added, removed or changed between two snapshots."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [("utf-8", "\n"), ("utf-8", "\r\n"), ("utf-8-sig", "\r\n"), ("utf-16-le-bom", "\r\n")],
)
def test_static_password_becomes_random_and_run_once_goes(tmp_path: Path, encoding: str,
                                                          newline: str) -> None:
    original = encode(AWS_STATIC, encoding, newline)
    make_tree(tmp_path, "ec2launch-v2", config=original)
    before = snapshot(tmp_path)

    result = enable_password_generation(tmp_path)

    after = snapshot(tmp_path)
    assert after[AGENT_CONFIG_REL] == encode(AGENT_CONFIG_AWS, encoding, newline)
    assert after[AGENT_CONFIG_REL + BAK] == original
    assert after[RUN_ONCE_REL + BAK] == b""
    assert changed_only(before, after) == {
        "added": sorted([AGENT_CONFIG_REL + BAK, RUN_ONCE_REL + BAK]),
        "removed": [RUN_ONCE_REL],
        "changed": [AGENT_CONFIG_REL],
    }
    assert result["agent"] == "ec2launch-v2"
    assert result["agents_found"] == ["ec2launch-v2"]
    assert result["changed"] is True
    assert result["changed_files"] == [AGENT_CONFIG_REL]
    assert result["removed_files"] == [RUN_ONCE_REL]
    assert result["backups"] == [AGENT_CONFIG_REL + BAK, RUN_ONCE_REL + BAK]
    notes = " ".join(result["notes"])
    assert "static -> random" in notes and "once" in notes and "S3cret" not in json.dumps(result)
    assert any("once" in limit for limit in result["limits"])


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(AWS_STATIC, newline="\r\n"))
    enable_password_generation(tmp_path)
    first = snapshot(tmp_path)

    again = enable_password_generation(tmp_path)

    assert snapshot(tmp_path) == first
    assert again["changed"] is False
    assert again["changed_files"] == again["removed_files"] == again["created_files"] == []
    assert "already" in " ".join(again["notes"])


def test_default_config_is_left_alone_and_only_run_once_moves(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2")
    before = snapshot(tmp_path)

    result = enable_password_generation(tmp_path)

    assert changed_only(before, snapshot(tmp_path)) == {
        "added": [RUN_ONCE_REL + BAK], "removed": [RUN_ONCE_REL], "changed": []}
    assert result["changed_files"] == [] and result["backups"] == [RUN_ONCE_REL + BAK]


def test_missing_run_once_is_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", run_once=False)
    before = snapshot(tmp_path)
    result = enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before
    assert result["changed"] is False and "no .run-once" in " ".join(result["notes"])


def test_an_earlier_backup_is_never_overwritten(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(AWS_STATIC))
    write(tmp_path, AGENT_CONFIG_REL + BAK, b"the very first original")
    write(tmp_path, RUN_ONCE_REL + BAK, b"older")

    result = enable_password_generation(tmp_path)

    after = snapshot(tmp_path)
    assert after[AGENT_CONFIG_REL + BAK] == b"the very first original"
    assert after[RUN_ONCE_REL + BAK] == b"older"
    assert RUN_ONCE_REL not in after
    assert after[AGENT_CONFIG_REL] == encode(AGENT_CONFIG_AWS)
    assert result["backups"] == [AGENT_CONFIG_REL + BAK]


def test_marshalled_layout_do_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(AGENT_CONFIG_MARSHALLED, newline="\r\n"))
    enable_password_generation(tmp_path)
    expected = AGENT_CONFIG_MARSHALLED.replace("type: doNothing", "type: random")
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected, newline="\r\n")


def test_hand_edited_file_keeps_comments_quotes_and_the_script(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(AGENT_CONFIG_CUSTOM, "utf-8-sig", "\r\n"))
    result = enable_password_generation(tmp_path)
    expected = AGENT_CONFIG_CUSTOM.replace(
        '                    type: "static"   # rotated by the vault job\n'
        "                    data: 'Tr0ub4dor&3'\n",
        '                    type: "random"   # rotated by the vault job\n',
    )
    assert expected != AGENT_CONFIG_CUSTOM
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected, "utf-8-sig", "\r\n")
    assert "Tr0ub4dor" not in json.dumps(result)
    assert "data" in " ".join(result["notes"])


def test_missing_task_is_added_at_the_end_of_pre_ready(tmp_path: Path) -> None:
    without = AGENT_CONFIG_AWS.replace(
        "      - task: setAdminAccount\n        inputs:\n          password:\n"
        "            type: random\n", "")
    make_tree(tmp_path, "ec2launch-v2", config=encode(without))
    enable_password_generation(tmp_path)
    expected = without.replace(
        "            - network\n",
        "            - network\n      - task: setAdminAccount\n        inputs:\n"
        "          password:\n            type: random\n")
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected)


def test_missing_stage_is_added_before_post_ready(tmp_path: Path) -> None:
    text = "version: 1.0\nconfig:\n- stage: boot\n  tasks:\n  - task: extendRootPartition\n" \
           "# after Windows is ready\n- stage: postReady\n  tasks:\n  - task: startSsm\n"
    make_tree(tmp_path, "ec2launch-v2", config=encode(text, newline="\r\n"))
    enable_password_generation(tmp_path)
    expected = text.replace(
        "# after", "- stage: preReady\n  tasks:\n  - task: setAdminAccount\n    inputs:\n"
        "      password:\n        type: random\n# after")
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected, newline="\r\n")


@pytest.mark.parametrize(
    ("admin", "fixed"),
    [
        ("      - task: setAdminAccount\n",
         "      - task: setAdminAccount\n        inputs:\n          password:\n"
         "            type: random\n"),
        ("      - task: setAdminAccount\n        inputs: {}\n",
         "      - task: setAdminAccount\n        inputs:\n          password:\n"
         "            type: random\n"),
        ("      - task: setAdminAccount\n        inputs:\n          name: Admin\n",
         "      - task: setAdminAccount\n        inputs:\n          name: Admin\n"
         "          password:\n            type: random\n"),
        ("      - task: setAdminAccount\n        inputs:\n          password:\n",
         "      - task: setAdminAccount\n        inputs:\n          password:\n"
         "            type: random\n"),
        ("      - task: setAdminAccount\n        inputs:\n          password:\n"
         "            type:   # fill in\n",
         "      - task: setAdminAccount\n        inputs:\n          password:\n"
         "            type: random   # fill in\n"),
        ("      -   task: 'setAdminAccount'\n          inputs:\n            password:\n"
         "              type: 'DONOTHING'\n",
         "      -   task: 'setAdminAccount'\n          inputs:\n            password:\n"
         "              type: 'random'\n"),
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
    assert new == ("config:\n  - stage: preReady\n    tasks:   # nothing yet\n"
                   "      - task: setAdminAccount\n        inputs:\n          password:\n"
                   "            type: random\n")


def test_json_agent_config(tmp_path: Path) -> None:
    original = encode(AGENT_CONFIG_JSON, "utf-8-sig", "\r\n")
    make_tree(tmp_path, "ec2launch-v2", config=original)
    enable_password_generation(tmp_path)
    new = decode(snapshot(tmp_path)[AGENT_CONFIG_REL])
    expected = AGENT_CONFIG_JSON.replace('"static",\n', '"random"\n').replace(
        '                                                                         "data":  '
        '"Winter2024!"\n', "")
    assert new == expected.replace("\n", "\r\n")
    assert json.loads(new)["config"][1]["tasks"][0]["inputs"] == {"password": {"type": "random"}}


@pytest.mark.parametrize(
    ("text", "added"),
    [
        ('{"config": [{"stage": "boot", "tasks": []}]}', '{"stage": "preReady"'),
        ('{"config": [{"stage": "preReady"}]}', '"tasks": [{"task": "setAdminAccount"'),
        ('{"config": [{"stage": "preReady", "tasks": [{"task": "x"}]}]}',
         '{"task": "setAdminAccount"'),
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n\t- stage: preReady\n", "tabs"),
        ("config:\n  - stage: preReady\n    tasks:\n      - task: setAdminAccount\n"
         "        inputs:\n          password: {type: static, data: x}\n", "block mapping"),
        ("config: [{stage: preReady}]\n", "block list"),
        ("version: 1.0\n", "no 'config'"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("config:\n  - stage: preReady\n    tasks: *default\n", "block list"),
        ("config:\n  - stage: preReady\n  - stage: preReady\n    stage: boot\n", "twice"),
        ("config:\n  - stage: a\n---\nconfig:\n", "several YAML documents"),
        ("- stage: preReady\n", "top level is a list"),
        ('{"config": [}', "not valid JSON"),
        ("config:\n  - stage: preReady\n    tasks:\n      - task: setAdminAccount\n"
         "        inputs:\n          password:\n            type: &t static\n", "anchors"),
    ],
)
def test_files_it_cannot_edit_safely_are_refused(tmp_path: Path, text: str, message: str) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(text))
    before = snapshot(tmp_path)
    with pytest.raises(ConfigParseError, match=re.escape(message)):
        enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before  # a refusal changes nothing, .run-once included


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=b"\x00\x01\x02\xff" * 50)
    with pytest.raises(ConfigParseError, match="binary"):
        enable_password_generation(tmp_path)


def test_dry_run_changes_nothing_and_says_what_it_would(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2", config=encode(AWS_STATIC))
    before = snapshot(tmp_path)
    result = enable_password_generation(tmp_path, dry_run=True)
    assert snapshot(tmp_path) == before
    assert result["dry_run"] is True and result["changed"] is True
    assert result["changed_files"] == [AGENT_CONFIG_REL]
    assert result["removed_files"] == [RUN_ONCE_REL]


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


TASKS = st.sampled_from([
    {"task": "activateWindows", "inputs": {"activation": {"type": "amazon"}}},
    {"task": "setDnsSuffix", "inputs": {"suffixes": ["$REGION.ec2-utilities.amazonaws.com"]}},
    {"task": "setWallpaper", "inputs": {"path": "C:\\wall.jpg", "attributes": ["hostName"]}},
    {"task": "executeScript", "inputs": [
        {"frequency": "once", "type": "powershell",
         "content": "echo 1\n- task: setAdminAccount\ntype: x\n"}]},
    {"task": "startSsm"},
]).map(copy.deepcopy)  # shared objects would make PyYAML write anchors
ADMINS = st.sampled_from([
    None,
    {"task": "setAdminAccount"},
    {"task": "setAdminAccount", "inputs": {}},
    {"task": "setAdminAccount", "inputs": {"name": "Admin", "expire": True}},
    {"task": "setAdminAccount", "inputs": {"password": {}}},
    {"task": "setAdminAccount", "inputs": {"password": {"type": "random"}}},
    {"task": "setAdminAccount", "inputs": {"password": {"type": "static", "data": "p w#1"}}},
    {"task": "setAdminAccount", "inputs": {"password": {"data": "x", "type": "doNothing"},
                                           "name": "Administrator"}},
]).map(copy.deepcopy)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["boot", "network", "preReady", "postReady", "userData"]),
                          min_size=1, max_size=4, unique=True))
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
@given(config=configs(), indent=st.sampled_from([2, 4]), indented_lists=st.booleans(),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_any_layout_gets_exactly_the_intended_change(config: dict[str, Any], indent: int,
                                                      indented_lists: bool, newline: str) -> None:
    dumper = _IndentedLists if indented_lists else yaml.SafeDumper
    text = yaml.dump(config, Dumper=dumper, indent=indent, sort_keys=False,
                     default_flow_style=False).replace("\n", newline)

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
