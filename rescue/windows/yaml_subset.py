"""Block-style YAML as lines: just enough structure to find and change one setting.

No YAML library is in the standard library. YamlDocument reads block mappings and lists
(comments, quotes, block scalars and blank lines kept as they are) and refuses what it
cannot edit safely (tabs, flow style where a block is needed, anchors, several
documents) with ConfigParseError naming the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .encoding import line_ending, split_lines
from .errors import ConfigParseError

_KEYVAL = re.compile(
    r"""(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#:?,\[\]{}&*!|>%@`-][^#]*?|-[^\s#][^#]*?)"""
    r"""[ \t]*(?P<colon>:)(?:[ \t]+(?P<value>.*?))?[ \t]*$"""
)
_BLOCK_SCALAR = re.compile(r"(?:[&!]\S*[ \t]+)*[|>][1-9+-]{0,2}")


def _strip_comment(text: str) -> str:
    """The text before a YAML comment (a # after a space, outside quotes), right-stripped."""
    quote = ""
    previous = " "
    index = 0
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if quote:
            if char == quote:
                if quote == "'" and text[index + 1 : index + 2] == "'":
                    index += 2
                    continue
                quote = ""
        elif char == "#" and previous in " \t":
            return text[:index].rstrip()
        elif char in "\"'" and previous in " \t[{,":
            quote = char
        previous = char
        index += 1
    return text.rstrip()


def _dash(text: str, col: int) -> Optional[int]:
    """If a list item's dash is at `col`, the column where its content starts."""
    if text[col : col + 1] != "-" or text[col + 1 : col + 2] not in ("", " ", "\t"):
        return None
    after = col + 1
    while text[after : after + 1] in (" ", "\t"):
        after += 1
    return after


def _unquote(token: str) -> str:
    if token.startswith('"'):
        try:
            return str(json.loads(token))
        except ValueError:
            return token[1:-1]
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    return token


@dataclass
class Line:
    text: str
    eol: str
    kind: str = "content"  # content | blank | comment | scalar (block scalar body) | marker
    indent: int = 0


@dataclass(frozen=True)
class Block:
    first: int  # line of the first entry (for a list item's mapping: the dash line)
    col: int  # column of the entries' keys, or of the list's dashes
    end: int  # exclusive
    seq: bool


@dataclass(frozen=True)
class Key:
    line: int
    key: str
    value: str  # inline value, comment stripped
    value_col: int  # -1 without an inline value
    colon_col: int


class YamlDocument:
    """Block-style YAML as lines; just enough structure to find and change one setting."""

    def __init__(self, text: str, rel: str) -> None:
        self.rel = rel
        self.newline = line_ending(text)
        self.lines = [Line(body, eol) for body, eol in split_lines(text)]
        self._classify()

    def render(self) -> str:
        return "".join(line.text + line.eol for line in self.lines)

    def error(self, index: int, message: str) -> ConfigParseError:
        return ConfigParseError(
            f"{self.rel} line {index + 1}: {message}; fix the file (or restore AWS's default "
            "agent-config.yml) and retry"
        )

    def _classify(self) -> None:
        scalar_floor: Optional[int] = None
        seen_content = False
        for index, line in enumerate(self.lines):
            stripped = line.text.lstrip(" ")
            line.indent = len(line.text) - len(stripped)
            if scalar_floor is not None:
                if not stripped.strip() or line.indent > scalar_floor:
                    line.kind = "scalar"
                    continue
                scalar_floor = None
            if not stripped.strip():
                line.kind = "blank"
            elif stripped.startswith("#"):
                line.kind = "comment"
            elif stripped.startswith("\t"):
                raise self.error(index, "tabs indent this line (YAML allows spaces only)")
            elif line.indent == 0 and (
                stripped.startswith("%") or re.match(r"(---|\.\.\.)(\s|$)", stripped)
            ):
                if seen_content or _strip_comment(stripped[3:]):
                    raise self.error(index, "several YAML documents, or content after '---'")
                line.kind = "marker"
            else:
                seen_content = True
                scalar_floor = self._block_scalar_floor(line)

    @staticmethod
    def _block_scalar_floor(line: Line) -> Optional[int]:
        """If the line opens a block scalar (| or >), the column its body must be right of."""
        col = floor = line.indent
        while True:
            after = _dash(line.text, col)
            if after is None:
                break
            floor, col = col, after
        content = _strip_comment(line.text[col:])
        if _BLOCK_SCALAR.fullmatch(content):
            return floor
        match = _KEYVAL.match(content)
        if match and match.group("value") and _BLOCK_SCALAR.fullmatch(match.group("value")):
            return col
        return None

    # -- structure

    def root(self) -> Block:
        first = next((i for i, line in enumerate(self.lines) if line.kind == "content"), None)
        if first is None:
            raise ConfigParseError(f"{self.rel} is empty: restore AWS's default agent-config.yml")
        col = self.lines[first].indent
        return Block(first, col, len(self.lines), _dash(self.lines[first].text, col) is not None)

    def entries(self, block: Block) -> List[int]:
        found = [block.first]
        for index in range(block.first + 1, block.end):
            line = self.lines[index]
            if line.kind != "content":
                continue
            if line.indent < block.col:
                raise self.error(index, "this line is indented less than its block")
            if line.indent == block.col:
                is_item = _dash(line.text, block.col) is not None
                if block.seq and not is_item:
                    raise self.error(index, "expected a list item ('- ...')")
                if is_item == block.seq:
                    found.append(index)
                # else: an item of the previous key's list, written at the key's own column
        return found

    def keys(self, block: Block) -> List[Key]:
        out = []
        for index in self.entries(block):
            content = _strip_comment(self.lines[index].text[block.col :])
            match = _KEYVAL.match(content)
            if match is None:
                raise self.error(index, "expected 'key: value'")
            value = match.group("value") or ""
            value_col = block.col + match.start("value") if value else -1
            out.append(
                Key(
                    index,
                    _unquote(match.group("key")),
                    value,
                    value_col,
                    block.col + match.start("colon"),
                )
            )
        return out

    def key(self, block: Block, name: str) -> Optional[Key]:
        found = [key for key in self.keys(block) if key.key == name]
        if len(found) > 1:
            raise self.error(found[1].line, f"'{name}' appears twice in the same mapping")
        return found[0] if found else None

    def region_end(self, block: Block, line: int) -> int:
        """Where the entry starting at `line` ends."""
        later = [index for index in self.entries(block) if index > line]
        return later[0] if later else block.end

    def value(self, block: Block, key: Key) -> Optional[Block]:
        """The nested block under a key (a mapping or a list), None if it has none."""
        end = self.region_end(block, key.line)
        for index in range(key.line + 1, end):
            line = self.lines[index]
            if line.kind != "content":
                continue
            is_item = _dash(line.text, line.indent) is not None
            if line.indent > block.col or (line.indent == block.col and is_item):
                return Block(index, line.indent, end, is_item)
            raise self.error(index, "unexpected indentation")
        return None

    def items(self, seq: Block) -> List[Tuple[int, int]]:
        starts = self.entries(seq)
        return [
            (start, starts[n + 1] if n + 1 < len(starts) else seq.end)
            for n, start in enumerate(starts)
        ]

    def item_mapping(self, seq: Block, start: int, end: int) -> Optional[Block]:
        """The mapping a list item holds, None for a scalar or a nested list."""
        text = self.lines[start].text
        col = _dash(text, seq.col) or seq.col + 1  # items() starts items at dashes only
        inline = _strip_comment(text[col:])
        if inline:
            if _dash(text, col) is not None or not _KEYVAL.match(inline):
                return None
            return Block(start, col, end, False)
        for index in range(start + 1, end):
            line = self.lines[index]
            if line.kind == "content":
                if line.indent <= seq.col or _dash(line.text, line.indent) is not None:
                    return None
                return Block(index, line.indent, end, False)
        return None

    def scalar(self, key: Optional[Key]) -> str:
        if key is None:
            return ""
        value = key.value.strip()
        if value[:1] in ("&", "*", "!"):
            raise self.error(
                key.line, f"anchors, aliases and tags are not supported for '{key.key}'"
            )
        if value[:1] in ("{", "["):
            raise self.error(key.line, f"'{key.key}' is written in flow style ({value})")
        return _unquote(value)

    def last_line(self, start: int, end: int) -> int:
        """The last line of [start, end) that holds content (comments after it are not part)."""
        for index in range(end - 1, start - 1, -1):
            if self.lines[index].kind in ("content", "scalar"):
                return index
        return start

    def entry_col(self, index: int) -> int:
        line = self.lines[index]
        col = line.indent
        while True:
            after = _dash(line.text, col)
            if after is None:
                return col
            col = after

    def step(self) -> int:
        """The file's indentation step, from its first key with a nested mapping."""
        for index, line in enumerate(self.lines):
            if line.kind != "content" or not _strip_comment(line.text).endswith(":"):
                continue
            col = self.entry_col(index)
            below = next(
                (j for j in range(index + 1, len(self.lines)) if self.lines[j].kind == "content"),
                None,
            )
            if below is not None:
                nested = self.lines[below]
                if nested.indent > col and _dash(nested.text, nested.indent) is None:
                    return nested.indent - col
        return 2

    # -- changes

    def insert_after(self, index: int, bodies: List[str]) -> None:
        new = [Line(body, self.newline) for body in bodies]
        if not self.lines[index].eol:  # the file's last line, with no line ending
            self.lines[index].eol = self.newline
            new[-1].eol = ""
        self.lines[index + 1 : index + 1] = new

    def insert_before(self, index: int, bodies: List[str]) -> None:
        self.lines[index:index] = [Line(body, self.newline) for body in bodies]

    def set_value(self, key: Key, value: str) -> None:
        line = self.lines[key.line]
        if key.value_col < 0:
            line.text = (
                line.text[: key.colon_col + 1] + " " + value + line.text[key.colon_col + 1 :]
            )
            return
        old = key.value.strip()
        quote = old[0] if old[:1] in ("'", '"') else ""
        line.text = (
            line.text[: key.value_col]
            + quote
            + value
            + quote
            + line.text[key.value_col + len(key.value) :]
        )

    def drop_inline(self, key: Key) -> None:
        """Remove an inline empty collection ({} or []) so a block can follow the key."""
        line = self.lines[key.line]
        line.text = line.text[: key.colon_col + 1] + line.text[key.value_col + len(key.value) :]

    def remove_entry(self, key: Key) -> None:
        """Delete a key's line and the lines nested under it, not the comments after it."""
        end = key.line + 1
        col = self.entry_col(key.line)
        while end < len(self.lines):
            line = self.lines[end]
            if not (line.kind == "scalar" or (line.kind == "content" and line.indent > col)):
                break
            end += 1
        del self.lines[key.line : end]
