"""The JSON splice editor: new text goes in where it belongs, every other byte stays.

LaunchConfig.json (EC2Launch v1) and a JSON agent-config.yml (EC2Launch v2) are edited with it;
PowerShell's ConvertTo-Json writes `"key":  value` with CRLF and four spaces, which an edit
must not reformat.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescue.windows import ConfigParseError
from rescue.windows.json_splice import add_member, append, members, parse, remove_member, splice

POWERSHELL = '{\r\n    "setComputerName":  false,\r\n    "adminPasswordType":  "DoNothing"\r\n}'


def test_values_carry_their_offsets_in_the_text() -> None:
    text = '{"a": [1, "x\\"y", null], "b": {"c": -2.5e3}}'
    root = parse(text, "f.json")
    assert root.kind == "object" and (root.start, root.end) == (0, len(text))
    ((_, array),) = members(root, "a")
    assert array.kind == "array" and text[array.start : array.end] == '[1, "x\\"y", null]'
    assert [item.value for item in array.items] == [1, 'x"y', None]
    assert [text[item.start : item.end] for item in array.items] == ["1", '"x\\"y"', "null"]
    ((_, inner),) = members(root, "b")
    ((_, number),) = members(inner, "c")
    assert number.value == -2500.0 and text[number.start : number.end] == "-2.5e3"


@pytest.mark.parametrize("text", ['{"a": }', '{"a": 1,}', "", '{"a" 1}', "[1] 2", "{'a': 1}"])
def test_what_is_not_json_is_refused_naming_the_file(text: str) -> None:
    with pytest.raises(ConfigParseError, match=r"LaunchConfig\.json is not valid JSON"):
        parse(text, "LaunchConfig.json")


def test_members_by_exact_key_or_ignoring_case() -> None:
    # PowerShell's ConvertFrom-Json ignores key case, so EC2Launch v1 would read either.
    root = parse('{"Type": 1, "type": 2, "other": 3}', "f.json")
    assert [index for index, _ in members(root, "type")] == [1]
    assert [value.value for _, value in members(root, "TYPE", fold=True)] == [1, 2]
    assert members(root, "missing") == []


def test_a_member_added_to_powershell_output_keeps_its_layout() -> None:
    new = add_member(POWERSHELL, parse(POWERSHELL, "f.json"), "extendBootVolumeSize", "true")
    assert new == POWERSHELL.replace(
        '"DoNothing"\r\n}', '"DoNothing",\r\n    "extendBootVolumeSize":  true\r\n}'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", '{"k": 1}'),
        ('{\n  "a": 0\n}', '{\n  "a": 0,\n  "k": 1\n}'),
        ('{"a":0,"b":0}', '{"a":0,"b":0,"k":1}'),
    ],
)
def test_a_member_is_added_after_the_last_one(text: str, expected: str) -> None:
    assert add_member(text, parse(text, "f.json"), "k", "1") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[]", "[7]"), ("[\r\n  1\r\n]", "[\r\n  1,\r\n  7\r\n]"), ("[1, 2]", "[1, 2, 7]")],
)
def test_an_item_is_appended_in_the_lists_layout(text: str, expected: str) -> None:
    assert append(text, parse(text, "f.json"), "7") == expected


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, '{\n  "b": 2,\n  "c": 3\n}'),
        (1, '{\n  "a": 1,\n  "c": 3\n}'),
        (2, '{\n  "a": 1,\n  "b": 2\n}'),
    ],
)
def test_a_member_is_removed_with_its_separator(index: int, expected: str) -> None:
    text = '{\n  "a": 1,\n  "b": 2,\n  "c": 3\n}'
    assert remove_member(text, parse(text, "f.json"), index) == expected


def test_the_only_member_is_removed() -> None:
    text = '{ "data": "S3cret!" }'
    assert remove_member(text, parse(text, "f.json"), 0) == "{  }"


def test_splice_replaces_exactly_the_span() -> None:
    ((_, value),) = members(parse(POWERSHELL, "f.json"), "adminPasswordType")
    new = splice(POWERSHELL, value.start, value.end, '"Random"')
    assert new == POWERSHELL.replace('"DoNothing"', '"Random"')


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=8))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
LAYOUTS = st.sampled_from(
    [
        {"indent": None, "separators": (",", ":")},
        {"indent": None, "separators": (", ", ": ")},
        {"indent": 2},
        {"indent": 4, "separators": (",", ":  ")},
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    document=st.dictionaries(st.text(max_size=6), VALUES, min_size=1, max_size=4),
    layout=LAYOUTS,
    crlf=st.booleans(),
    added=VALUES,
)
def test_any_document_gets_exactly_the_edit(
    document: dict[str, Any], layout: dict[str, Any], crlf: bool, added: Any
) -> None:
    text = json.dumps(document, **layout)
    if crlf:
        text = text.replace("\n", "\r\n")
    root = parse(text, "f.json")
    for key, _, _, value in root.members:
        assert json.loads(text[value.start : value.end]) == document[key]

    key = "\u00e9new" if "\u00e9new" not in document else "\u00e9new2"
    grown = add_member(text, root, key, json.dumps(added))
    assert json.loads(grown) == {**document, key: added}
    last_end = root.members[-1][3].end
    assert grown[:last_end] == text[:last_end]  # nothing before the insertion moved
    assert grown.endswith(text[last_end:])

    for index, (name, _, _, _) in enumerate(root.members):
        assert json.loads(remove_member(text, root, index)) == {
            k: v for k, v in document.items() if k != name
        }
