"""The YAML subset editor behind agent-config.yml: finds one setting, changes only its lines.

EC2Launch v2 reads agent-config.yml with a full YAML parser; the agent has only the standard
library, so it reads the block style AWS documents and refuses, naming the line, what it
could misread.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescue.windows import ConfigParseError
from rescue.windows.yaml_subset import Block, YamlDocument

REL = "agent-config.yml"
CONFIG = """\
version: 1.0   # AWS's
config:
  - stage: preReady
    tasks:
      - task: setAdminAccount
        inputs:
          password:
            type: "static"   # rotated by the vault job
            data: 'it''s #1'
          name: Administrator
  # after the admin task
  - stage: postReady
    tasks: []   # nothing yet
"""


def nested(doc: YamlDocument, block: Block, name: str) -> Block:
    key = doc.key(block, name)
    assert key is not None, name
    found = doc.value(block, key)
    assert found is not None, name
    return found


def first_item(doc: YamlDocument, seq: Block) -> Block:
    assert seq.seq
    mapping = doc.item_mapping(seq, *doc.items(seq)[0])
    assert mapping is not None
    return mapping


def password(doc: YamlDocument) -> Block:
    """setAdminAccount's password settings, found through the structure as YAML reads it."""
    stage = first_item(doc, nested(doc, doc.root(), "config"))
    task = first_item(doc, nested(doc, stage, "tasks"))
    assert doc.scalar(doc.key(task, "task")) == "setAdminAccount"
    return nested(doc, nested(doc, task, "inputs"), "password")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab:#'\" -|>\r\n"), max_size=60))
def test_what_it_reads_renders_back_unchanged(text: str) -> None:
    try:
        doc = YamlDocument(text, REL)
    except ConfigParseError:
        return  # refused before any edit: nothing to render
    assert doc.render() == text


def test_structure_and_scalars_as_yaml_reads_them() -> None:
    doc = YamlDocument(CONFIG, REL)
    assert [key.key for key in doc.keys(doc.root())] == ["version", "config"]
    block = password(doc)
    assert [key.key for key in doc.keys(block)] == ["type", "data"]
    assert doc.scalar(doc.key(block, "type")) == "static"
    assert doc.scalar(doc.key(block, "data")) == "it's #1"  # '' unescaped, # inside quotes
    stages = nested(doc, doc.root(), "config")
    names = [
        doc.scalar(doc.key(doc.item_mapping(stages, *item) or stages, "stage"))
        for item in doc.items(stages)
    ]
    assert names == ["preReady", "postReady"]


def test_a_value_changes_keeping_its_quotes_and_comment() -> None:
    doc = YamlDocument(CONFIG.replace("\n", "\r\n"), REL)
    key = doc.key(password(doc), "type")
    assert key is not None
    doc.set_value(key, "random")
    assert doc.render() == CONFIG.replace('"static"', '"random"').replace("\n", "\r\n")


def test_a_missing_value_is_filled_before_its_comment() -> None:
    doc = YamlDocument("type:   # fill in\n", REL)
    key = doc.key(doc.root(), "type")
    assert key is not None
    doc.set_value(key, "random")
    assert doc.render() == "type: random   # fill in\n"


def test_an_entry_goes_with_its_nested_lines_not_the_comment_after() -> None:
    doc = YamlDocument(CONFIG, REL)
    stage = first_item(doc, nested(doc, doc.root(), "config"))
    task = first_item(doc, nested(doc, stage, "tasks"))
    inputs = doc.key(task, "inputs")
    assert inputs is not None
    doc.remove_entry(inputs)
    assert doc.render() == CONFIG.replace(
        CONFIG[CONFIG.index("        inputs:") : CONFIG.index("  # after")], ""
    )


def test_lines_added_after_the_last_one_take_the_files_line_ending() -> None:
    doc = YamlDocument("a:\r\n  b: 1", REL)  # no final line ending
    doc.insert_after(doc.last_line(0, len(doc.lines)), ["  c: 2"])
    assert doc.render() == "a:\r\n  b: 1\r\n  c: 2"
    doc.insert_before(0, ["# top"])
    assert doc.render() == "# top\r\na:\r\n  b: 1\r\n  c: 2"


def test_an_empty_inline_list_makes_way_for_a_block() -> None:
    doc = YamlDocument(CONFIG, REL)
    stages = nested(doc, doc.root(), "config")
    post = doc.item_mapping(stages, *doc.items(stages)[1])
    assert post is not None
    tasks = doc.key(post, "tasks")
    assert tasks is not None and tasks.value == "[]"
    doc.drop_inline(tasks)
    assert doc.render() == CONFIG.replace("tasks: []   # nothing yet", "tasks:   # nothing yet")


def test_a_block_scalar_is_text_not_structure() -> None:
    # A script body may hold lines that look like keys, list items, tabs or '---'.
    text = "script: |\n  config:\n  - stage: preReady\n  \tWrite-Host x\n  ---\nconfig: []\n"
    doc = YamlDocument(text, REL)
    assert [key.key for key in doc.keys(doc.root())] == ["script", "config"]
    script = doc.key(doc.root(), "script")
    assert script is not None
    doc.remove_entry(script)
    assert doc.render() == "config: []\n"


@pytest.mark.parametrize(
    ("text", "indent"), [(CONFIG, 2), ("a:\n    b:\n        c: 1\n", 4), ("- a\n", 2)]
)
def test_the_files_indentation_step(text: str, indent: int) -> None:
    assert YamlDocument(text, REL).step() == indent


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("config:\n\t- stage: preReady\n", 2, "tabs"),
        ("a: 1\n---\nb: 2\n", 2, "several YAML documents"),
        ("a:\n    b: 1\n  c: 2\n", 3, "indented less than its block"),
    ],
)
def test_what_it_could_misread_is_refused_naming_the_line(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigParseError, match=rf"^{REL} line {line}: .*{message}"):
        doc = YamlDocument(text, REL)
        root = doc.root()
        for key in doc.keys(root):
            block = doc.value(root, key)
            if block is not None:
                doc.keys(block)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type: &t static\n", "anchors, aliases and tags"),
        ("type: *t\n", "anchors, aliases and tags"),
        ("type: {a: 1}\n", "flow style"),
    ],
)
def test_values_it_cannot_read_as_plain_scalars_are_refused(text: str, message: str) -> None:
    doc = YamlDocument(text, REL)
    with pytest.raises(ConfigParseError, match=rf"line 1: .*{message}"):
        doc.scalar(doc.key(doc.root(), "type"))


def test_a_key_twice_in_one_mapping_is_refused() -> None:
    doc = YamlDocument("stage: a\nstage: b\n", REL)
    with pytest.raises(ConfigParseError, match="line 2: 'stage' appears twice"):
        doc.key(doc.root(), "stage")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_a_document_without_content_is_refused(text: str) -> None:
    with pytest.raises(ConfigParseError, match="is empty"):
        YamlDocument(text, REL).root()
