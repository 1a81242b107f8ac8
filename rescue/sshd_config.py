"""What the volume's own sshd would use: AuthorizedKeysFile and PermitRootLogin per user.

Follows sshd_config(5) as OpenSSH implements it: keywords are case-insensitive, the first
value obtained wins, `Include` takes globs (relative ones under /etc/ssh) and may sit in a
Match block, a Match in an included file ends with that file, and a matching Match block
overrides the global value. Match criteria that depend on the connection (Address, Host,
LocalAddress, LocalPort, RDomain) are unknown offline and count as not matching.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from . import RescueError
from .inroot import VolumeRoot

MAIN_CONFIG = "/etc/ssh/sshd_config"
DEFAULT_AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
DEFAULT_PERMIT_ROOT_LOGIN = "prohibit-password"  # OpenSSH's default since 7.0
MAX_INCLUDE_DEPTH = 16  # as sshd's own SERVCONF_MAX_DEPTH
KEYWORD_RE = re.compile(r"^\s*(\S+?)(?:\s*=\s*|\s+)(.*)$")

Criteria = List[Tuple[str, str]]  # (criterion, pattern list) pairs of one Match line


class Directive(NamedTuple):
    keyword: str  # lower case
    args: List[str]
    context: Tuple[Criteria, ...]  # Match lines enclosing it; empty means global


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
    for line in text.splitlines():
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
            directives.append(Directive(keyword, args, current))
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


def _match_list(value: str, patterns: str) -> bool:
    """sshd's match_pattern_list: any negated match fails, else any positive match wins."""
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(value, pattern[1:]):
                return False
        elif fnmatch.fnmatchcase(value, pattern):
            matched = True
    return matched


def _criteria_match(criteria: Criteria, user: UserIdentity) -> bool:
    for name, patterns in criteria:
        if name == "all":
            continue
        if name == "user":
            if not _match_list(user.name, patterns):
                return False
        elif name == "group":
            if not any(_match_list(group, patterns) for group in user.groups):
                return False
        else:
            return False  # depends on the connection: unknown offline
    return True


def setting(directives: List[Directive], keyword: str, user: UserIdentity) -> Optional[List[str]]:
    """The value sshd would apply for `user`: a matching Match block first, else global."""
    global_value: Optional[List[str]] = None
    for directive in directives:
        if directive.keyword != keyword:
            continue
        if not directive.context:
            if global_value is None:
                global_value = directive.args
        elif all(_criteria_match(criteria, user) for criteria in directive.context):
            return directive.args
    return global_value


def expand_tokens(pattern: str, user: UserIdentity) -> str:
    """Expand %% %h %u %U as sshd does for AuthorizedKeysFile; unknown tokens are refused."""
    out: List[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch != "%":
            out.append(ch)
            continue
        token = next(chars, "")
        values: Dict[str, str] = {"%": "%", "h": user.home, "u": user.name, "U": str(user.uid)}
        if token not in values:
            raise RescueError(
                f"AuthorizedKeysFile {pattern!r} uses %{token}, which sshd does not expand there"
            )
        out.append(values[token])
    return "".join(out)


def authorized_keys_files(directives: List[Directive], user: UserIdentity) -> List[str]:
    """Absolute in-volume paths of the user's authorized_keys files, in sshd's order.

    Relative entries are relative to the home directory. `none` gives an empty list.
    """
    value = setting(directives, "authorizedkeysfile", user)
    patterns = list(DEFAULT_AUTHORIZED_KEYS_FILES) if value is None else value
    if patterns == ["none"]:
        return []
    paths = []
    for pattern in patterns:
        expanded = expand_tokens(pattern, user)
        paths.append(
            expanded if expanded.startswith("/") else user.home.rstrip("/") + "/" + expanded
        )
    return paths


def permit_root_login(directives: List[Directive], user: UserIdentity) -> str:
    value = setting(directives, "permitrootlogin", user)
    return value[0].lower() if value else DEFAULT_PERMIT_ROOT_LOGIN
