"""Text that goes back to exactly the same bytes: BOM, UTF-8/UTF-16/ANSI, line endings."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import List, Tuple

from .errors import ConfigParseError


@dataclass
class Text:
    """Decoded text and how to encode it back to the same bytes."""

    text: str
    codec: str
    bom: bytes

    def encode(self, text: str) -> bytes:
        errors = "surrogatepass" if self.codec.startswith("utf-16") else "strict"
        return self.bom + text.encode(self.codec, errors)


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _sniff(body: bytes, rel: str) -> str:
    if b"\x00" in body:
        # UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte.
        half = len(body) // 2
        if body[1::2].count(0) > half // 2:
            return "utf-16-le"
        if body[0::2].count(0) > half // 2:
            return "utf-16-be"
        raise ConfigParseError(f"{rel} is binary, not a text configuration file: restore it")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"  # an ANSI code page: latin-1 maps each byte to itself, edits are ASCII
    return "utf-8"


def decode_text(data: bytes, rel: str) -> Text:
    """The file's text, refused unless encoding it again gives exactly `data`."""
    bom, codec = next(((b, c) for b, c in _BOMS if data.startswith(b)), (b"", ""))
    body = data[len(bom) :]
    codec = codec or _sniff(body, rel)
    errors = "surrogatepass" if codec.startswith("utf-16") else "strict"
    try:
        text = body.decode(codec, errors)
    except UnicodeDecodeError as exc:
        raise ConfigParseError(f"{rel} is not valid {codec}: {exc.reason}; restore it") from exc
    decoded = Text(text, codec, bom)
    if decoded.encode(text) != data:
        raise ConfigParseError(
            f"{rel}: its encoding does not round-trip, editing it could alter it"
        )
    return decoded


def line_ending(text: str) -> str:
    """The text's first line ending, for the lines an edit adds."""
    for newline in ("\r\n", "\n", "\r"):
        if newline in text:
            return newline
    return "\r\n"  # a one-line Windows file: Windows' own line ending


_LINE_RE = re.compile(r"([^\r\n]*)(\r\n|\n|\r)?")


def split_lines(text: str) -> List[Tuple[str, str]]:
    """(body, line ending) pairs; joining them gives the text back."""
    lines = []
    pos = 0
    while pos < len(text):
        match = _LINE_RE.match(text, pos)
        if match is None:  # cannot happen: the pattern matches the empty string
            break
        lines.append((match.group(1), match.group(2) or ""))
        pos = match.end()
    return lines
