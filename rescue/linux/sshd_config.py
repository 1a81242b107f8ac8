"""The volume's own sshd_config as its sshd reads it: directives, Includes, Match, values.

Follows sshd_config(5) as OpenSSH implements it; Match criteria that depend on the connection
are unknown offline, so every value sshd could end up with is kept (`choices`). What those
values mean for a key login: sshd_key_login. Rules and limits: docs/sshd-config.md.
"""

from __future__ import annotations

import re
import shlex
from typing import List, NamedTuple, Optional, Sequence, Tuple

from .. import RescueError
from .inroot import VolumeRoot

MAIN_CONFIG = "/etc/ssh/sshd_config"
CONNECTION_CRITERIA = ("address", "host", "localaddress", "localport", "rdomain")
USER_CRITERIA = ("user", "group")
MAX_INCLUDE_DEPTH = 16  # as sshd's own SERVCONF_MAX_DEPTH
ROOT_HOME_KEY = ""  # in `homes`: the home of uid 0, which sshd runs as
KEYWORD_RE = re.compile(r"^\s*(\S+?)(?:\s*=\s*|\s+)(.*)$")

Criteria = List[Tuple[str, str]]  # (criterion, pattern list) pairs of one Match line


class Directive(NamedTuple):
    keyword: str  # lower case
    args: List[str]
    context: Tuple[Criteria, ...]  # Match lines enclosing it; empty means global
    where: str = ""  # "file line N", for messages


class UserIdentity(NamedTuple):
    name: str
    uid: int
    home: str
    groups: Sequence[str]


def _split_args(rest: str) -> List[str]:
    try:
        return shlex.split(rest, comments=True)
    except ValueError:
        return rest.split()


def read_directives(root: VolumeRoot) -> List[Directive]:
    """Every directive of the volume's sshd_config with Includes expanded in place."""
    return _read_file(root, MAIN_CONFIG, (), 0)


def _read_file(
    root: VolumeRoot, path: str, context: Tuple[Criteria, ...], depth: int
) -> List[Directive]:
    if depth > MAX_INCLUDE_DEPTH:
        raise RescueError(
            f"sshd_config Includes nest deeper than {MAX_INCLUDE_DEPTH} levels at {path}"
        )
    text = root.read_text(path)
    if text is None:
        return []
    directives: List[Directive] = []
    current = context
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = KEYWORD_RE.match(stripped)
        if not found:
            continue
        keyword, args = found.group(1).lower(), _split_args(found.group(2))
        if keyword == "match":
            current = (*context, _parse_criteria(args))
        elif keyword == "include":
            for pattern in args:
                absolute = pattern if pattern.startswith("/") else "/etc/ssh/" + pattern
                for included in root.glob(absolute):
                    directives.extend(_read_file(root, included, current, depth + 1))
        else:
            directives.append(Directive(keyword, args, current, f"{path} line {number}"))
    return directives


def _parse_criteria(args: List[str]) -> Criteria:
    criteria: Criteria = []
    words = list(args)
    while words:
        name = words.pop(0).lower()
        if name == "all":
            criteria.append(("all", ""))
        elif words:
            criteria.append((name, words.pop(0)))
        else:
            criteria.append(("invalid", name))
    return criteria


def match_pattern(value: str, pattern: str) -> bool:
    """sshd's match_pattern: `*` and `?` are the only wildcards (`[` is a plain character)."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _match_list(value: str, patterns: str) -> int:
    """sshd's match_pattern_list: -1 on a negated match, 1 on a positive one, else 0."""
    matched = 0
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if match_pattern(value, pattern[1:]):
                return -1
        elif match_pattern(value, pattern):
            matched = 1
    return matched


def _group_match(groups: Sequence[str], patterns: str) -> bool:
    """sshd's ga_match_pattern_list: a negated match on any group wins over the others."""
    found = False
    for group in groups:
        result = _match_list(group, patterns)
        if result < 0:
            return False
        found = found or result > 0
    return found


def _criteria_state(criteria: Criteria, user: UserIdentity) -> Optional[bool]:
    """True or False when the user decides the Match line, None when the connection does."""
    state: Optional[bool] = True
    for name, patterns in criteria:
        if name == "all":
            continue
        if name == "user":
            if _match_list(user.name, patterns) != 1:
                return False
        elif name == "group":
            if not _group_match(user.groups, patterns):
                return False
        elif name in CONNECTION_CRITERIA:
            state = None
        else:
            raise RescueError(
                f"sshd_config has 'Match {name}', which sshd does not know: it would not start"
            )
    return state


def context_state(context: Tuple[Criteria, ...], user: UserIdentity) -> Optional[bool]:
    states = [_criteria_state(criteria, user) for criteria in context]
    if False in states:
        return False
    return None if None in states else True


CRITERIA_NAMES = {
    "all": "all",
    "user": "User",
    "group": "Group",
    "address": "Address",
    "host": "Host",
    "localaddress": "LocalAddress",
    "localport": "LocalPort",
    "rdomain": "RDomain",
}


def match_text(context: Tuple[Criteria, ...]) -> str:
    """The Match line(s) as sshd_config(5) spells them, for messages."""
    return " / ".join(
        "Match "
        + " ".join(
            f"{CRITERIA_NAMES.get(name, name)} {patterns}".strip() for name, patterns in criteria
        )
        for criteria in context
    )


def setting(directives: List[Directive], keyword: str, user: UserIdentity) -> Optional[List[str]]:
    """The value sshd would apply for `user`: a matching Match block first, else global.

    A block that depends on the connection counts as not matching here.
    """
    global_value: Optional[List[str]] = None
    for directive in directives:
        if directive.keyword != keyword:
            continue
        if not directive.context:
            if global_value is None:
                global_value = directive.args
        elif context_state(directive.context, user):
            return directive.args
    return global_value


def choices(
    directives: List[Directive], keyword: str, user: UserIdentity
) -> List[Tuple[Optional[List[str]], Directive]]:
    """Every value sshd may apply for `user` over all connections, with its directive.

    A Match block that surely applies ends the list; one that depends on the connection
    is one possibility and the search goes on; the global value (None when unset) is the
    last possibility unless a sure block came first.
    """
    found: List[Tuple[Optional[List[str]], Directive]] = []
    global_value: Optional[Directive] = None
    for directive in directives:
        if directive.keyword != keyword:
            continue
        if not directive.context:
            if global_value is None:
                global_value = directive
            continue
        state = context_state(directive.context, user)
        if state is False:
            continue
        found.append((directive.args, directive))
        if state:
            return found
    if global_value is None:
        found.append((None, Directive(keyword, [], ())))
    else:
        found.append((global_value.args, global_value))
    return found
