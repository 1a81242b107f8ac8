"""JSON with positions, for edits that splice new text in and leave every other byte alone.

parse() keeps each value's offsets; members() finds an object's keys; splice(),
append(), add_member() and remove_member() return the edited text, in the
container's own layout (separators, indentation, PowerShell's "key":  value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, List, Tuple

from .errors import ConfigParseError


@dataclass
class JNode:
    kind: str  # object | array | string | other
    start: int
    end: int
    value: Any = None
    members: List[Tuple[str, int, int, JNode]] = field(default_factory=list)  # key, span, value
    items: List[JNode] = field(default_factory=list)


_JSON_WS = re.compile(r"[ \t\r\n]*")
_JSON_ATOM = re.compile(r"true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _skip(text: str, pos: int) -> int:
    match = _JSON_WS.match(text, pos)
    return pos if match is None else match.end()


def _value(text: str, pos: int) -> JNode:
    char = text[pos : pos + 1]
    if char == '"':
        value, end = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        return JNode("string", pos, end, value)
    if char in ("{", "["):
        return _container(text, pos)
    match = _JSON_ATOM.match(text, pos)
    if match is None:
        raise ValueError(f"unexpected {char!r} at offset {pos}")
    return JNode("other", pos, match.end(), json.loads(match.group()))


def _container(text: str, pos: int) -> JNode:
    is_object = text[pos] == "{"
    node = JNode("object" if is_object else "array", pos, pos)
    closing = "}" if is_object else "]"
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == closing:
        node.end = pos + 1
        return node
    while True:
        if is_object:
            if text[pos : pos + 1] != '"':
                raise ValueError(f"expected a key at offset {pos}")
            key, key_end = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
            colon = _skip(text, key_end)
            if text[colon : colon + 1] != ":":
                raise ValueError(f"expected ':' at offset {colon}")
            value = _value(text, _skip(text, colon + 1))
            node.members.append((key, pos, key_end, value))
        else:
            value = _value(text, pos)
            node.items.append(value)
        pos = _skip(text, value.end)
        if text[pos : pos + 1] == closing:
            node.end = pos + 1
            return node
        if text[pos : pos + 1] != ",":
            raise ValueError(f"expected ',' or {closing!r} at offset {pos}")
        pos = _skip(text, pos + 1)


def parse(text: str, rel: str) -> JNode:
    try:
        json.loads(text)  # the standard parser's message is the clearer one
        root = _value(text, _skip(text, 0))
    except ValueError as exc:
        raise ConfigParseError(f"{rel} is not valid JSON ({exc}): fix or restore it") from exc
    return root


def members(node: JNode, key: str, fold: bool = False) -> List[Tuple[int, JNode]]:
    wanted = key.casefold() if fold else key
    return [
        (index, value)
        for index, (name, _, _, value) in enumerate(node.members)
        if (name.casefold() if fold else name) == wanted
    ]


def splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def append(text: str, node: JNode, new: str) -> str:
    """Add `new` (a member or an item) after the last one, in the container's own layout."""
    spans = [(key_start, value.end) for _, key_start, _, value in node.members] or [
        (item.start, item.end) for item in node.items
    ]
    if not spans:
        return splice(text, node.start + 1, node.start + 1, new)
    if len(spans) > 1:
        separator = text[spans[-2][1] : spans[-1][0]]  # e.g. ",\r\n    "
    else:
        separator = "," + text[node.start + 1 : spans[0][0]]
    return splice(text, spans[-1][1], spans[-1][1], separator + new)


def add_member(text: str, node: JNode, key: str, value: str) -> str:
    colon = ": "
    if node.members:
        _, _, key_end, first = node.members[-1]
        colon = text[key_end : first.start]  # PowerShell writes "key":  value
    return append(text, node, json.dumps(key) + colon + value)


def remove_member(text: str, node: JNode, index: int) -> str:
    _, key_start, _, value = node.members[index]
    if index > 0:
        return splice(text, node.members[index - 1][3].end, value.end, "")
    if len(node.members) > 1:
        return splice(text, key_start, node.members[1][1], "")
    return splice(text, key_start, value.end, "")
