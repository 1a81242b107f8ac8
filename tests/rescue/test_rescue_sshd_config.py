"""sshd_config as the volume's sshd reads it: first value, Includes, Match, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescue import RescueError
from rescue.linux.inroot import VolumeRoot
from rescue.linux.sshd_config import UserIdentity, read_directives
from rescue.linux.sshd_key_login import (
    authorized_keys_choices,
    authorized_keys_files,
    expand_tokens,
    key_login_refusal,
    keys_command,
    permit_root_login,
)

ALICE = UserIdentity("alice", 1001, "/home/alice", ["alice", "admins"])


def files_for(tmp_path: Path, files: dict[str, str], user: UserIdentity = ALICE) -> list[str]:
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    with VolumeRoot(tmp_path) as root:
        return authorized_keys_files(read_directives(root), user)


def test_default_without_config(tmp_path: Path) -> None:
    assert files_for(tmp_path, {}) == [
        "/home/alice/.ssh/authorized_keys",
        "/home/alice/.ssh/authorized_keys2",
    ]


def test_keyword_case_equals_sign_quotes_and_first_value_wins(tmp_path: Path) -> None:
    config = (
        'authorizedkeysfile=".ssh/with space" /etc/keys/%u # note\nAuthorizedKeysFile .ssh/second\n'
    )
    assert files_for(tmp_path, {"etc/ssh/sshd_config": config}) == [
        "/home/alice/.ssh/with space",
        "/etc/keys/alice",
    ]


def test_include_globs_sorted_and_absolute(tmp_path: Path) -> None:
    files = {
        "etc/ssh/sshd_config": "Include /etc/ssh/conf.d/*.conf other.conf\n",
        "etc/ssh/conf.d/20-b.conf": "AuthorizedKeysFile .ssh/b\n",
        "etc/ssh/conf.d/10-a.conf": "# only a comment\n",
        "etc/ssh/other.conf": "AuthorizedKeysFile .ssh/other\n",
    }
    assert files_for(tmp_path, files) == ["/home/alice/.ssh/b"]


def test_include_inside_match_and_match_ending_with_its_file(tmp_path: Path) -> None:
    files = {
        "etc/ssh/sshd_config": (
            "Include sshd_config.d/*.conf\n"
            "AuthorizedKeysFile .ssh/global\n"
            "Match Group admins\n  Include admins.conf\n"
        ),
        "etc/ssh/sshd_config.d/00-match.conf": "Match User bob\n  AuthorizedKeysFile .ssh/bob\n",
        "etc/ssh/admins.conf": "AuthorizedKeysFile /etc/ssh/admin_keys/%u\n",
    }
    assert files_for(tmp_path, files) == ["/etc/ssh/admin_keys/alice"]
    bob = UserIdentity("bob", 1002, "/home/bob", ["bob"])
    assert files_for(tmp_path, {}, bob) == ["/home/bob/.ssh/bob"]


def test_include_loop_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RescueError, match="nest deeper"):
        files_for(tmp_path, {"etc/ssh/sshd_config": "Include sshd_config\n"})


def test_match_negation_and_connection_criteria(tmp_path: Path) -> None:
    config = (
        "Match User *,!alice\n AuthorizedKeysFile /not-alice\n"
        "Match LocalPort 22 User alice\n AuthorizedKeysFile /depends-on-connection\n"
        "Match all\n AuthorizedKeysFile /everyone\n"
    )
    assert files_for(tmp_path, {"etc/ssh/sshd_config": config}) == ["/everyone"]


def test_tokens() -> None:
    assert expand_tokens("%h/%u/%U/%%", ALICE) == "/home/alice/alice/1001/%"
    with pytest.raises(RescueError, match="%k"):
        expand_tokens("/keys/%k", ALICE)


def test_permit_root_login_default_and_set(tmp_path: Path) -> None:
    root_user = UserIdentity("root", 0, "/root", ["root"])
    with VolumeRoot(tmp_path) as root:
        assert permit_root_login(read_directives(root), root_user) == "prohibit-password"
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text("PermitRootLogin No\n")
    with VolumeRoot(tmp_path) as root:
        assert permit_root_login(read_directives(root), root_user) == "no"


HOMES = {"": "/root", "root": "/root", "alice": "/home/alice", "svc": "/srv/svc/"}


def choices_for(tmp_path: Path, config: str, user: UserIdentity = ALICE) -> list[list[str]]:
    (tmp_path / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(config)
    with VolumeRoot(tmp_path) as root:
        return [
            choice.paths for choice in authorized_keys_choices(read_directives(root), user, HOMES)
        ]


def test_tilde_is_the_home_of_sshd_itself_or_of_the_named_user(tmp_path: Path) -> None:
    # sshd expands ~ when it reads its config, as root (servconf.c tilde_expand): not %h.
    config = "AuthorizedKeysFile ~/.ssh/authorized_keys ~svc/keys ~alice ~ .ssh/rel\n"
    assert choices_for(tmp_path, config) == [
        [
            "/root/.ssh/authorized_keys",
            "/srv/svc/keys",
            "/home/alice/",
            "/root/",
            "/home/alice/.ssh/rel",
        ]
    ]


def test_tilde_of_an_unknown_user_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RescueError, match=r"'nobody2'.*not in the volume's /etc/passwd"):
        choices_for(tmp_path, "AuthorizedKeysFile ~nobody2/.ssh/keys\n")


def test_group_negation_on_any_group_wins(tmp_path: Path) -> None:
    # ga_match_pattern_list: alice is in admins, so *,!admins does not match her.
    config = "Match Group *,!admins\n AuthorizedKeysFile /not-admins\n"
    assert choices_for(tmp_path, config) == [
        ["/home/alice/.ssh/authorized_keys", "/home/alice/.ssh/authorized_keys2"]
    ]
    bob = UserIdentity("bob", 1002, "/home/bob", ["bob", "developers"])
    assert choices_for(tmp_path, config, bob) == [["/not-admins"]]


def test_only_star_and_question_mark_are_wildcards(tmp_path: Path) -> None:
    config = (
        "Match User [a]lice,ALICE\n AuthorizedKeysFile /brackets\n"
        "Match User al?ce,!bob\n AuthorizedKeysFile /question\n"
    )
    assert choices_for(tmp_path, config) == [["/question"]]


def test_connection_match_keeps_every_list_sshd_may_pick(tmp_path: Path) -> None:
    config = (
        "AuthorizedKeysFile .ssh/global\n"
        "Match LocalPort 2222\n AuthorizedKeysFile /port/%u\n"
        "Match Address 10.0.0.0/8 User alice\n AuthorizedKeysFile none\n"
        "Match Group admins\n AuthorizedKeysFile /admins/%u\n"
        "Match Host *.example\n AuthorizedKeysFile /never-reached\n"
    )
    # A sure Match (Group admins) ends the search: neither the later one nor global applies.
    assert choices_for(tmp_path, config) == [["/port/alice"], [], ["/admins/alice"]]
    carol = UserIdentity("carol", 1003, "/home/carol", ["carol"])
    assert choices_for(tmp_path, config, carol) == [
        ["/port/carol"],
        ["/never-reached"],
        ["/home/carol/.ssh/global"],
    ]


def test_match_all_applies_to_everyone(tmp_path: Path) -> None:
    config = "AuthorizedKeysFile .ssh/global\nMatch all\n AuthorizedKeysFile /all/%U\n"
    assert choices_for(tmp_path, config) == [["/all/1001"]]


def test_unknown_match_criterion_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RescueError, match=r"'Match colour'.*would not start"):
        choices_for(tmp_path, "Match Colour blue\n AuthorizedKeysFile /x\n")


def test_keys_command_under_any_connection_is_found(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(
        "AuthorizedKeysCommand none\nMatch LocalPort 2222\n AuthorizedKeysCommand /bin/keys %u\n"
    )
    with VolumeRoot(tmp_path) as root:
        assert keys_command(read_directives(root), ALICE) == "/bin/keys %u"
        bob = UserIdentity("bob", 1002, "/home/bob", ["bob"])
        (tmp_path / "etc/ssh/sshd_config").write_text("AuthorizedKeysCommand none\n")
        assert keys_command(read_directives(root), bob) is None


def access_for(tmp_path: Path, config: str, user: UserIdentity = ALICE) -> tuple[str | None, str]:
    (tmp_path / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(config)
    with VolumeRoot(tmp_path) as root:
        refusal, notes = key_login_refusal(read_directives(root), user)
    return refusal, " ".join(notes)


def test_access_lists_append_lines_and_a_matching_block_replaces_them(tmp_path: Path) -> None:
    # As sshd -T shows: every AllowUsers line adds; the Match blocks' lines replace the global.
    assert access_for(tmp_path, "AllowUsers bob\nAllowUsers al?ce\n")[0] is None
    refusal, _ = access_for(tmp_path, "AllowUsers alice\nMatch Group admins\n  AllowUsers bob\n")
    assert refusal and "AllowUsers bob (/etc/ssh/sshd_config line 3) excludes alice" in refusal
    assert (
        access_for(tmp_path, "Match User alice\n AllowUsers bob\nMatch all\n AllowUsers a*\n")[0]
        is None
    )


def test_group_lists_use_every_group_and_plain_patterns(tmp_path: Path) -> None:
    assert "DenyGroups adm* (/etc/ssh/sshd_config line 1) excludes alice" in (
        access_for(tmp_path, "DenyGroups adm*\n")[0] or ""
    )
    assert access_for(tmp_path, "AllowGroups nobody adm?ns\n")[0] is None
    refusal = access_for(tmp_path, "AllowGroups !admins\n")[0]  # `!` is a plain character here
    assert refusal and "AllowGroups !admins (/etc/ssh/sshd_config line 1) excludes alice" in refusal


def test_user_at_host_patterns(tmp_path: Path) -> None:
    refusal = access_for(tmp_path, "DenyUsers alice@10.0.0.0/8\n")[0]
    assert refusal and "on hosts the agent cannot tell apart" in refusal
    refusal, notes = access_for(tmp_path, "AllowUsers alice@*.corp bob\n")
    assert refusal is None and "alice may log in only from *.corp" in notes
    refusal, notes = access_for(tmp_path, "AllowUsers alice@*.corp alice\n")
    assert refusal is None and "only from" not in notes


def test_authentication_methods(tmp_path: Path) -> None:
    assert access_for(tmp_path, "AuthenticationMethods any\n") == (None, "")
    refusal, notes = access_for(tmp_path, "AuthenticationMethods password,publickey\n")
    assert refusal is None and "sshd also asks for password" in notes
    refusal, _ = access_for(tmp_path, "AuthenticationMethods keyboard-interactive password\n")
    assert (
        refusal
        and "keyboard-interactive password (/etc/ssh/sshd_config line 1) lets no key in" in refusal
    )
    refusal, notes = access_for(
        tmp_path, "Match Address 10.0.0.0/8\n AuthenticationMethods password\n"
    )
    assert refusal is None and "under Match Address 10.0.0.0/8: no key logs in there" in notes


def test_pubkey_authentication_per_user_and_connection(tmp_path: Path) -> None:
    refusal, _ = access_for(tmp_path, "Match Group admins\n PubkeyAuthentication no\n")
    assert refusal and "PubkeyAuthentication no" in refusal
    refusal, notes = access_for(tmp_path, "Match LocalPort 22\n PubkeyAuthentication no\n")
    assert refusal is None and "Match LocalPort 22" in notes
    assert access_for(tmp_path, "PubkeyAuthentication yes\nPubkeyAuthentication no\n")[0] is None
