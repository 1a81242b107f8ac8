"""EC2Launch v2 on directory trees: agent-config.yml edited in place, .run-once moved aside."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rescue.windows import ConfigParseError, enable_password_generation
from tests.support.windows_fixtures import (
    AGENT_CONFIG_AWS,
    AGENT_CONFIG_CUSTOM,
    AGENT_CONFIG_JSON,
    AGENT_CONFIG_MARSHALLED,
    AGENT_CONFIG_REL,
    RUN_ONCE_REL,
    decode,
    enable_on,
    encode,
    make_tree,
    snapshot,
    write,
)

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
def test_static_password_becomes_random_and_run_once_goes(
    tmp_path: Path, encoding: str, newline: str
) -> None:
    original = encode(AWS_STATIC, encoding, newline)
    before, result, after = enable_on(tmp_path, "ec2launch-v2", original)
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
        "added": [RUN_ONCE_REL + BAK],
        "removed": [RUN_ONCE_REL],
        "changed": [],
    }
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
        "            type: random\n",
        "",
    )
    make_tree(tmp_path, "ec2launch-v2", config=encode(without))
    enable_password_generation(tmp_path)
    expected = without.replace(
        "            - network\n",
        "            - network\n      - task: setAdminAccount\n        inputs:\n"
        "          password:\n            type: random\n",
    )
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected)


def test_missing_stage_is_added_before_post_ready(tmp_path: Path) -> None:
    text = (
        "version: 1.0\nconfig:\n- stage: boot\n  tasks:\n  - task: extendRootPartition\n"
        "# after Windows is ready\n- stage: postReady\n  tasks:\n  - task: startSsm\n"
    )
    make_tree(tmp_path, "ec2launch-v2", config=encode(text, newline="\r\n"))
    enable_password_generation(tmp_path)
    expected = text.replace(
        "# after",
        "- stage: preReady\n  tasks:\n  - task: setAdminAccount\n    inputs:\n"
        "      password:\n        type: random\n# after",
    )
    assert snapshot(tmp_path)[AGENT_CONFIG_REL] == encode(expected, newline="\r\n")


def test_json_agent_config(tmp_path: Path) -> None:
    original = encode(AGENT_CONFIG_JSON, "utf-8-sig", "\r\n")
    make_tree(tmp_path, "ec2launch-v2", config=original)
    enable_password_generation(tmp_path)
    new = decode(snapshot(tmp_path)[AGENT_CONFIG_REL])
    expected = AGENT_CONFIG_JSON.replace('"static",\n', '"random"\n').replace(
        '                                                                         "data":  '
        '"Winter2024!"\n',
        "",
    )
    assert new == expected.replace("\n", "\r\n")
    assert json.loads(new)["config"][1]["tasks"][0]["inputs"] == {"password": {"type": "random"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n\t- stage: preReady\n", "tabs"),
        (
            "config:\n  - stage: preReady\n    tasks:\n      - task: setAdminAccount\n"
            "        inputs:\n          password: {type: static, data: x}\n",
            "block mapping",
        ),
        ("config: [{stage: preReady}]\n", "block list"),
        ("version: 1.0\n", "no 'config'"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("config:\n  - stage: preReady\n    tasks: *default\n", "block list"),
        ("config:\n  - stage: preReady\n  - stage: preReady\n    stage: boot\n", "twice"),
        ("config:\n  - stage: a\n---\nconfig:\n", "several YAML documents"),
        ("- stage: preReady\n", "top level is a list"),
        ('{"config": [}', "not valid JSON"),
        (
            "config:\n  - stage: preReady\n    tasks:\n      - task: setAdminAccount\n"
            "        inputs:\n          password:\n            type: &t static\n",
            "anchors",
        ),
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
