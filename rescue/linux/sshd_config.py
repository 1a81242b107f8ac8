"""What the volume's own sshd would use: AuthorizedKeysFile and PermitRootLogin per user.

Follows sshd_config(5) as OpenSSH implements it; Match criteria that depend on the connection
are unknown offline, so every value sshd could end up with is kept (`authorized_keys_choices`).
Rules and limits: docs/sshd-config.md.
"""

from __future__ import annotations

import re
import shlex
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .. import RescueError
from .inroot import VolumeRoot

MAIN_CONFIG = "/etc/ssh/sshd_config"
DEFAULT_AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
DEFAULT_PERMIT_ROOT_LOGIN = "prohibit-password"  # OpenSSH's default since 7.0
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


class KeysChoice(NamedTuple):
    """One AuthorizedKeysFile value sshd may apply to the user, and under which Match."""

    paths: List[str]  # absolute in-volume paths, sshd's order; empty for `none`
    match: str  # the Match line(s) deciding it, "" for the global value or the default


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


def _context_state(context: Tuple[Criteria, ...], user: UserIdentity) -> Optional[bool]:
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
        elif _context_state(directive.context, user):
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
        state = _context_state(directive.context, user)
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


def expand_tilde(pattern: str, homes: Mapping[str, str]) -> str:
    """sshd's tilde_expand at config time: `~` is root's home (sshd runs as root)."""
    if not pattern.startswith("~"):
        return pattern
    name, slash, rest = pattern[1:].partition("/")
    key = name or ROOT_HOME_KEY
    if key not in homes:
        raise RescueError(
            f"AuthorizedKeysFile {pattern!r} names user {name!r}, who is not in the volume's "
            "/etc/passwd: sshd would not start with it; fix sshd_config"
        )
    home = homes[key]
    return home + ("" if home.endswith("/") else "/") + (rest if slash else "")


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


def _paths(patterns: List[str], user: UserIdentity, homes: Mapping[str, str]) -> List[str]:
    if patterns == ["none"]:
        return []
    paths = []
    for pattern in patterns:
        expanded = expand_tokens(expand_tilde(pattern, homes), user)
        paths.append(
            expanded if expanded.startswith("/") else user.home.rstrip("/") + "/" + expanded
        )
    return paths


def authorized_keys_choices(
    directives: List[Directive], user: UserIdentity, homes: Mapping[str, str]
) -> List[KeysChoice]:
    """Every AuthorizedKeysFile list sshd may use for `user` (one per connection case).

    Relative entries are relative to the home directory; `none` gives an empty list.
    `homes` maps user names to homes from the volume's passwd, ROOT_HOME_KEY to root's.
    """
    found: List[KeysChoice] = []
    for value, directive in choices(directives, "authorizedkeysfile", user):
        patterns = list(DEFAULT_AUTHORIZED_KEYS_FILES) if value is None else value
        choice = KeysChoice(_paths(patterns, user, homes), match_text(directive.context))
        if choice.paths not in [known.paths for known in found]:
            found.append(choice)
    return found


def authorized_keys_files(
    directives: List[Directive], user: UserIdentity, homes: Optional[Mapping[str, str]] = None
) -> List[str]:
    """The list sshd uses when no connection-dependent Match block applies."""
    value = setting(directives, "authorizedkeysfile", user)
    patterns = list(DEFAULT_AUTHORIZED_KEYS_FILES) if value is None else value
    return _paths(patterns, user, homes if homes is not None else {})


def keys_command(directives: List[Directive], user: UserIdentity) -> Optional[str]:
    """The AuthorizedKeysCommand sshd may run for `user` (under any connection), if any."""
    for value, _ in choices(directives, "authorizedkeyscommand", user):
        if value and value[0].lower() != "none":
            return " ".join(value)
    return None


def permit_root_login(directives: List[Directive], user: UserIdentity) -> str:
    value = setting(directives, "permitrootlogin", user)
    return value[0].lower() if value else DEFAULT_PERMIT_ROOT_LOGIN


def permit_root_login_choices(directives: List[Directive], user: UserIdentity) -> List[str]:
    """Every PermitRootLogin value sshd may apply for `user` over all connections."""
    return [
        value[0].lower() if value else DEFAULT_PERMIT_ROOT_LOGIN
        for value, _ in choices(directives, "permitrootlogin", user)
    ]


# Access control that decides whether sshd lets the key in at all (auth.c allowed_user,
# auth2.c). Rules and limits: docs/sshd-config.md, "Whether sshd accepts the key".
ACCESS_LISTS = ("denyusers", "allowusers", "denygroups", "allowgroups")
ACCESS_NAMES = {
    "denyusers": "DenyUsers",
    "allowusers": "AllowUsers",
    "denygroups": "DenyGroups",
    "allowgroups": "AllowGroups",
}


def list_setting(
    directives: List[Directive], keyword: str, user: UserIdentity
) -> Tuple[List[Tuple[str, Directive]], List[Directive]]:
    """(patterns sshd applies when no connection Match decides, connection-dependent lines).

    Unlike other keywords, sshd appends every line of AllowUsers/DenyUsers/AllowGroups/
    DenyGroups; the lines of the Match blocks that apply replace the global list.
    """
    sure: List[Tuple[str, Directive]] = []
    global_value: List[Tuple[str, Directive]] = []
    maybe: List[Directive] = []
    for directive in directives:
        if directive.keyword != keyword:
            continue
        pairs = [(pattern, directive) for pattern in directive.args]
        if not directive.context:
            global_value.extend(pairs)
            continue
        state = _context_state(directive.context, user)
        if state:
            sure.extend(pairs)
        elif state is None:
            maybe.append(directive)
    return (sure or global_value), maybe


def _user_part(name: str, pattern: str) -> Tuple[bool, str]:
    """sshd's match_user: (whether the user part matches, the host part or "").

    The user part is one match_pattern (`*` `?`, no lists, no `!`); the host part depends
    on the connection, so the agent cannot decide it.
    """
    user_pattern, _, host = pattern.partition("@")
    return match_pattern(name, user_pattern), host


def _where(directive: Directive) -> str:
    inside = match_text(directive.context)
    return f" ({directive.where}{', under ' + inside if inside else ''})" if directive.where else ""


def _access_refusal(
    directives: List[Directive], user: UserIdentity, notes: List[str]
) -> Optional[str]:
    """Why sshd's DenyUsers/AllowUsers/DenyGroups/AllowGroups keep the user out, if they do."""
    lists = {keyword: list_setting(directives, keyword, user) for keyword in ACCESS_LISTS}
    for pattern, directive in lists["denyusers"][0]:
        matched, host = _user_part(user.name, pattern)
        if matched:
            on_hosts = (
                f" from hosts {host} (the agent cannot know which host the owner connects "
                "from, so it counts as always)"
                if host
                else ""
            )
            where = _where(directive)
            return f"sshd_config's DenyUsers {pattern}{where} denies {user.name}{on_hosts}"
    allowed = lists["allowusers"][0]
    if allowed:
        matching = [(p, d) for p, d in allowed if _user_part(user.name, p)[0]]
        if not matching:
            return (
                f"sshd_config's AllowUsers {' '.join(p for p, _ in allowed)}"
                f"{_where(allowed[0][1])} does not list {user.name}: sshd refuses every login "
                "of users not listed"
            )
        hosts = [_user_part(user.name, p)[1] for p, _ in matching]
        if all(hosts):
            notes.append(
                f"sshd_config's AllowUsers lets {user.name} in only from hosts "
                f"{', '.join(hosts)}: the key works from there only"
            )
    for pattern, directive in lists["denygroups"][0]:
        groups = [group for group in user.groups if match_pattern(group, pattern)]
        if groups:
            return (
                f"sshd_config's DenyGroups {pattern}{_where(directive)} denies {user.name}, "
                f"a member of {groups[0]}"
            )
    allowed = lists["allowgroups"][0]
    if allowed and not any(
        match_pattern(group, pattern) for group in user.groups for pattern, _ in allowed
    ):
        return (
            f"sshd_config's AllowGroups {' '.join(p for p, _ in allowed)}{_where(allowed[0][1])} "
            f"lists none of {user.name}'s groups ({', '.join(user.groups) or 'none'}): sshd "
            "refuses the login"
        )
    for keyword in ACCESS_LISTS:
        for directive in lists[keyword][1]:
            notes.append(
                f"{ACCESS_NAMES[keyword]} {' '.join(directive.args)} applies to connections "
                f"matching {match_text(directive.context)}: it may keep {user.name} out of them"
            )
    return None


def _methods_state(value: Optional[List[str]]) -> Tuple[str, str]:
    """("alone" | "second" | "never", the other methods of the shortest list with publickey)."""
    if not value or [word.lower() for word in value] == ["any"]:
        return "alone", ""
    with_key: List[str] = []
    for method_list in value:
        methods = method_list.split(",")
        if methods == ["publickey"]:
            return "alone", ""
        if "publickey" in methods:
            others = list(methods)
            others.remove("publickey")
            with_key.append(",".join(others))
    if with_key:
        return "second", min(with_key, key=lambda others: others.count(","))
    return "never", ""


def key_login_refusal(
    directives: List[Directive], user: UserIdentity
) -> Tuple[Optional[str], List[str]]:
    """(why sshd would not accept any key for the user, notes on connections or factors).

    PubkeyAuthentication and AuthenticationMethods follow first-value-wins per connection:
    refused only when every value sshd may apply keeps keys out; otherwise a note.
    """
    notes: List[str] = []
    pubkey = choices(directives, "pubkeyauthentication", user)
    off = [d for value, d in pubkey if value and value[0].lower() == "no"]
    if len(off) == len(pubkey):
        return (
            f"sshd_config sets PubkeyAuthentication no{_where(off[0])}: sshd accepts no key "
            f"for {user.name}",
            notes,
        )
    for directive in off:
        notes.append(
            f"PubkeyAuthentication no for connections matching {match_text(directive.context)}: "
            "the key cannot log in through them"
        )
    methods = choices(directives, "authenticationmethods", user)
    states = [(_methods_state(value), d) for value, d in methods]
    if all(state == "never" for (state, _), _ in states):
        directive = states[0][1]
        return (
            f"sshd_config's AuthenticationMethods {' '.join(directive.args)}{_where(directive)} "
            "has no method list with publickey: sshd accepts no key",
            notes,
        )
    for (state, others), directive in states:
        when = match_text(directive.context)
        scope = f"for connections matching {when}" if when else ""
        if state == "second":
            notes.append(
                f"AuthenticationMethods {' '.join(directive.args)}{_where(directive)}: "
                f"the key is one factor; sshd also asks for {others} (e.g. the user's "
                f"password) {scope}".rstrip()
            )
        elif state == "never":
            notes.append(
                f"AuthenticationMethods {' '.join(directive.args)} {scope}: no key logs in "
                "through those connections"
            )
    refusal = _access_refusal(directives, user, notes)
    return refusal, notes
