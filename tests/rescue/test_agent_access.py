"""sshd's access rules the key must pass: PubkeyAuthentication, Allow/Deny Users/Groups,
AuthenticationMethods; and no user's key may land in a file sshd reads for root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.rescue_helpers import AgentRun
from tests.support.rescue_trees import new_key, write_linux_tree

OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOthe other@x"
USERS = (("ec2-user", 1000), ("alice", 1001))
ALICE_KEYS = {"home/alice/.ssh/authorized_keys": OTHER + "\n"}


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path)[1]


def run(run_agent: AgentRun, tree: Path, key: str) -> tuple[int, dict[str, Any]]:
    return run_agent("--platform", "linux", "--root", str(tree), "--public-key", key)


def users(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {user["name"]: user for user in out["users"]}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("PubkeyAuthentication no\n", "PubkeyAuthentication no"),
        ("AllowUsers admin\n", "AllowUsers admin"),
        ("DenyUsers ec2-user\n", "DenyUsers ec2-user"),
        ("DenyUsers ec2-*@10.0.0.0/8\n", "DenyUsers ec2-*@10.0.0.0/8"),
        ("AllowGroups wheel\n", "AllowGroups wheel"),
        ("DenyGroups ec2-us?r\n", "DenyGroups ec2-us?r"),
        ("AuthenticationMethods password\n", "AuthenticationMethods password"),
        ("Match User ec2-user\n  PubkeyAuthentication no\n", "PubkeyAuthentication no"),
        ("AllowUsers alice\nMatch User ec2-user\n  AllowUsers bob\n", "AllowUsers bob"),
    ],
)
def test_user_sshd_keeps_out_is_refused_naming_the_directive(
    tmp_path: Path, run_agent: AgentRun, key: str, config: str, named: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config=config)
    code, out = run(run_agent, tree, key)
    assert code == 1 and not out["ok"] and named in out["error"], out
    assert not (tree / "home/ec2-user/.ssh").exists()


def test_allow_and_deny_lists_pick_users(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    config = "AllowUsers al* ec2-user\nAllowUsers nobody\nDenyUsers alice\n"
    tree = write_linux_tree(tmp_path / "t", USERS, config, ALICE_KEYS)
    code, out = run(run_agent, tree, key)
    assert code == 0 and out["key_users"] == ["ec2-user"], out
    alice = users(out)["alice"]
    assert "DenyUsers alice" in alice["refused"] and not alice["added"]
    assert (tree / "home/alice/.ssh/authorized_keys").read_text() == OTHER + "\n"


def test_allow_users_with_host_part_writes_and_notes(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config="AllowUsers ec2-user@10.0.0.0/8\n")
    code, out = run(run_agent, tree, key)
    assert code == 0 and out["key_users"] == ["ec2-user"], out
    assert any(
        "ec2-user may log in only from 10.0.0.0/8" in note for note in out["users"][0]["notes"]
    )


@pytest.mark.parametrize(
    ("config", "notes"),
    [
        pytest.param(
            "AuthenticationMethods publickey,password publickey,keyboard-interactive:pam,otp\n",
            ["sshd also asks for password"],
            id="second-factor-noted",
        ),
        pytest.param(
            "AuthenticationMethods publickey,password publickey\nPubkeyAuthentication yes\n",
            [],
            id="publickey-alone-in-some-list",
        ),
    ],
)
def test_authentication_methods_with_publickey_count(
    tmp_path: Path, run_agent: AgentRun, key: str, config: str, notes: list[str]
) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config=config)
    code, out = run(run_agent, tree, key)
    assert code == 0 and out["key_users"] == ["ec2-user"] and out["users"][0]["added"], out
    assert (tree / "home/ec2-user/.ssh/authorized_keys").read_text() == key + "\n"
    written = out["users"][0].get("notes", [])
    assert [any(note in line for line in written) for note in notes] == [True] * len(notes)
    assert len(written) == len(notes), written


def test_connection_match_disabling_keys_only_notes(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    config = "Match Address 10.0.0.0/8\n  PubkeyAuthentication no\n  DenyUsers *\n"
    tree = write_linux_tree(tmp_path / "t", sshd_config=config)
    code, out = run(run_agent, tree, key)
    notes = " ".join(out["users"][0]["notes"])
    assert (
        code == 0 and "PubkeyAuthentication no under Match Address 10.0.0.0/8: no key" in notes
    ), out
    assert "DenyUsers under Match Address 10.0.0.0/8 may exclude connections" in notes


def test_non_root_user_with_root_home_is_refused(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", USERS, files=ALICE_KEYS)
    passwd = tree / "etc/passwd"
    passwd.write_text(passwd.read_text().replace("/home/ec2-user", "/root"))
    code, out = run(run_agent, tree, key)
    assert code == 0 and out["key_users"] == ["alice"], out
    refused = users(out)["ec2-user"]["refused"]
    assert "/root/.ssh/authorized_keys is also root's key file (uid 0)" in refused
    assert not (tree / "root/.ssh").exists()


def test_home_linked_to_root_is_refused(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config="AuthorizedKeysFile /etc/ssh/k/%u\n")
    (tree / "etc/ssh/k").mkdir()
    (tree / "etc/ssh/k/ec2-user").write_text("")
    (tree / "etc/ssh/k/root").symlink_to("ec2-user")
    code, out = run(run_agent, tree, key)
    assert code == 1 and "/etc/ssh/k/ec2-user is also root's key file (uid 0)" in out["error"], out
    assert (tree / "etc/ssh/k/ec2-user").read_text() == ""


def test_root_file_shared_when_root_already_uses_keys(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", files={"root/.ssh/authorized_keys": OTHER + "\n"})
    passwd = tree / "etc/passwd"
    passwd.write_text(passwd.read_text().replace("/home/ec2-user", "/root"))
    code, out = run(run_agent, tree, key)
    assert code == 0 and sorted(out["key_users"]) == ["ec2-user", "root"], out


def test_root_file_shared_when_root_cannot_log_in_with_keys(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config="PermitRootLogin no\n")
    passwd = tree / "etc/passwd"
    passwd.write_text(passwd.read_text().replace("/home/ec2-user", "/root"))
    code, out = run(run_agent, tree, key)
    assert code == 0 and out["key_users"] == ["ec2-user"], out
