"""The lines of an authorized_keys file as sshd reads them: which key each line holds.

Options come before the key type; the blob identifies the key whatever its comment. Used
to tell whether a file already holds the key (and whether that line is restricted by
options) and whether root's keys are really used.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


def parse_key_line(line: str) -> Optional[Tuple[str, str]]:
    """(options, blob) of an authorized_keys line, None for comments and blank lines."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    for index, word in enumerate(words[:-1]):
        if word.startswith(KEY_TYPE_PREFIXES):
            return " ".join(words[:index]), words[index + 1]
    return None


def key_blobs(text: str) -> List[str]:
    """The base64 blob of every key line, with options or without."""
    return [parsed[1] for parsed in map(parse_key_line, text.splitlines()) if parsed]


def first_key_line(texts: List[str], blob: str) -> Optional[Tuple[int, int, bool]]:
    """(file index, line index, has options) of the first line sshd finds holding `blob`.

    Lines end at a newline only, as sshd reads them (str.splitlines also breaks at form
    feeds, U+2028...), so the index counts the same lines as the file's bytes split there.
    """
    for file_index, text in enumerate(texts):
        for line_index, line in enumerate(text.split("\n")):
            parsed = parse_key_line(line)
            if parsed and parsed[1] == blob:
                return file_index, line_index, bool(parsed[0])
    return None


def has_unforced_key(text: str) -> bool:
    """Whether some key line carries no forced command (so the account is really used)."""
    return any(
        parsed and "command=" not in parsed[0] for parsed in map(parse_key_line, text.splitlines())
    )
