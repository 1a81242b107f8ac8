"""What the volume's sshd_config decides for one user's key login: files and refusals.

Which authorized_keys files sshd may read for the user (AuthorizedKeysFile with its `~`
and `%` expansions, one list per connection case), whether keys let the user in at all
(PermitRootLogin, AllowUsers and the other access lists, AuthenticationMethods), and
whether an AuthorizedKeysCommand decides too. Rules and limits: docs/sshd-config.md.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

from .. import RescueError
from .sshd_config import (
    ROOT_HOME_KEY,
    Directive,
    UserIdentity,
    choices,
    context_state,
    match_pattern,
    match_text,
    setting,
)

DEFAULT_AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
DEFAULT_PERMIT_ROOT_LOGIN = "prohibit-password"  # OpenSSH's default since 7.0


class KeysChoice(NamedTuple):
    """One AuthorizedKeysFile value sshd may apply to the user, and under which Match."""

    paths: List[str]  # absolute in-volume paths, sshd's order; empty for `none`
    match: str  # the Match line(s) deciding it, "" for the global value or the default


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


# Whether sshd lets a key in at all (auth.c allowed_user, auth2.c): docs/sshd-config.md.
ACCESS_NAMES = {
    "denyusers": "DenyUsers",
    "allowusers": "AllowUsers",
    "denygroups": "DenyGroups",
    "allowgroups": "AllowGroups",
    "pubkeyauthentication": "PubkeyAuthentication",
    "authenticationmethods": "AuthenticationMethods",
}


def list_setting(
    directives: List[Directive], keyword: str, user: UserIdentity
) -> Tuple[List[Tuple[str, Directive]], List[Directive]]:
    """(patterns sshd applies when no connection Match decides, connection-dependent lines).

    sshd appends every AllowUsers/DenyUsers/AllowGroups/DenyGroups line; the lines of the
    Match blocks that apply replace the global ones.
    """
    sure: List[Tuple[str, Directive]] = []
    global_value: List[Tuple[str, Directive]] = []
    maybe: List[Directive] = []
    for directive in directives:
        if directive.keyword != keyword:
            continue
        state = context_state(directive.context, user) if directive.context else False
        pairs = [(pattern, directive) for pattern in directive.args]
        if not directive.context:
            global_value += pairs
        elif state:
            sure += pairs
        elif state is None:
            maybe.append(directive)
    return (sure or global_value), maybe


def _access_refusal(
    directives: List[Directive], user: UserIdentity, notes: List[str]
) -> Optional[str]:
    """Why DenyUsers/AllowUsers/DenyGroups/AllowGroups keep the user out, in sshd's order.

    A users pattern is match_user's: one `*`/`?` pattern for the user, then `@host`, which
    depends on the client: a Deny with a matching user part refuses, an Allow notes it.
    Groups: plain patterns against each of the user's groups (ga_match).
    """
    for keyword in list(ACCESS_NAMES)[:4]:
        name = ACCESS_NAMES[keyword]
        pairs, maybe = list_setting(directives, keyword, user)
        for directive in maybe:
            notes.append(f"{name} under {match_text(directive.context)} may exclude connections")
        if not pairs:
            continue
        if keyword.endswith("users"):
            hits = [
                (pattern, directive, pattern.partition("@")[2])
                for pattern, directive in pairs
                if match_pattern(user.name, pattern.partition("@")[0])
            ]
        else:
            hits = [
                (pattern, directive, "")
                for pattern, directive in pairs
                if any(match_pattern(group, pattern) for group in user.groups)
            ]
        if keyword.startswith("deny") and hits:
            pattern, directive, host = hits[0]
            return f"sshd_config's {name} {pattern} ({directive.where}) excludes {user.name}" + (
                " (on hosts the agent cannot tell apart offline)" if host else ""
            )
        if keyword.startswith("allow"):
            if not hits:
                listed = " ".join(pattern for pattern, _ in pairs)
                return f"sshd_config's {name} {listed} ({pairs[0][1].where}) excludes {user.name}"
            if all(host for *_, host in hits):
                notes.append(
                    f"{name}: {user.name} may log in only from {', '.join(h for *_, h in hits)}"
                )
    return None


def _methods_state(value: Optional[List[str]]) -> Optional[str]:
    """None when a key alone logs in, else what sshd asks for besides it ("": keys never do)."""
    if not value or value == ["any"]:
        return None
    others: List[str] = []
    for method_list in value:
        methods = method_list.split(",")
        if "publickey" in methods:
            methods.remove("publickey")
            if not methods:
                return None
            others.append(",".join(methods))
    return min(others, key=len) if others else ""


def key_login_refusal(
    directives: List[Directive], user: UserIdentity
) -> Tuple[Optional[str], List[str]]:
    """(why sshd would accept no key for the user, notes: connections, second factors).

    PubkeyAuthentication and AuthenticationMethods: first value wins per connection, so
    refused only when every value sshd may apply keeps keys out.
    """
    notes: List[str] = []
    for keyword in list(ACCESS_NAMES)[4:]:
        found = choices(directives, keyword, user)
        states = [
            (
                _methods_state(value)
                if keyword == "authenticationmethods"
                else ""
                if value and value[0].lower() == "no"
                else None,
                directive,
            )
            for value, directive in found
        ]
        said = f"{ACCESS_NAMES[keyword]} {' '.join(states[0][1].args)}"
        if all(state == "" for state, _ in states):
            return f"sshd_config's {said} ({states[0][1].where}) lets no key in", notes
        for state, directive in states:
            said = f"{ACCESS_NAMES[keyword]} {' '.join(directive.args)}"
            if state == "":
                notes.append(f"{said} under {match_text(directive.context)}: no key logs in there")
            elif state:
                notes.append(f"{said}: sshd also asks for {state} (e.g. the password)")
    return _access_refusal(directives, user, notes), notes
