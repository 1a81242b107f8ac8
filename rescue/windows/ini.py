"""INI files as lines, edited in place: Group Policy's gpt.ini and scripts.ini."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Set, Tuple

from .encoding import line_ending, split_lines


@dataclass
class Ini:
    """An INI file as lines, edited in place (Group Policy's gpt.ini and scripts.ini)."""

    lines: List[List[str]]
    newline: str

    @classmethod
    def parse(cls, text: str, newline: str = "") -> Ini:
        return cls([[body, eol] for body, eol in split_lines(text)], newline or line_ending(text))

    def render(self) -> str:
        return "".join(body + eol for body, eol in self.lines)

    def section(self, name: str) -> Optional[Tuple[int, int]]:
        start = None
        for index, (body, _) in enumerate(self.lines):
            match = re.match(r"\s*\[([^\]]*)\]\s*$", body)
            if match is None:
                continue
            if start is not None:
                return start, index
            if match.group(1).strip().casefold() == name.casefold():
                start = index
        return None if start is None else (start, len(self.lines))

    def ensure_section(self, name: str) -> Tuple[int, int]:
        found = self.section(name)
        if found is not None:
            return found
        self.insert(len(self.lines), [f"[{name}]"])
        return len(self.lines) - 1, len(self.lines)

    def entries(self, name: str) -> List[Tuple[int, str, str]]:
        found = self.section(name)
        if found is None:
            return []
        out = []
        for index in range(found[0] + 1, found[1]):
            match = re.match(r"\s*([^=;#\s][^=]*?)\s*=(.*)$", self.lines[index][0])
            if match:
                out.append((index, match.group(1), match.group(2)))
        return out

    def get(self, section: str, key: str) -> Optional[Tuple[int, str]]:
        for index, name, value in self.entries(section):
            if name.casefold() == key.casefold():
                return index, value
        return None

    def put(self, section: str, key: str, value: str) -> None:
        found = self.get(section, key)
        if found is not None:
            body = self.lines[found[0]][0]
            self.lines[found[0]][0] = body[: body.index("=") + 1] + value
            return
        self.add(section, [f"{key}={value}"])

    def add(self, section: str, bodies: List[str]) -> None:
        start, _ = self.ensure_section(section)
        entries = self.entries(section)
        self.insert((entries[-1][0] if entries else start) + 1, bodies)

    def insert(self, index: int, bodies: List[str]) -> None:
        if index > 0 and not self.lines[index - 1][1]:
            self.lines[index - 1][1] = self.newline  # the last line had no line ending
        self.lines[index:index] = [[body, self.newline] for body in bodies]

    def remove(self, indexes: Set[int]) -> None:
        self.lines = [line for index, line in enumerate(self.lines) if index not in indexes]
