"""The proof a user cares about: after the agent ran, the new key logs in; another does not."""

from __future__ import annotations

import grp
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.sshd import start_sshd, stop_sshd
from rescue.linux.authorized_keys import inject_key
from rescue.linux.inroot import VolumeRoot
from rescue.linux.keys import parse_public_key
from rescue.linux.sshd_config import UserIdentity, read_directives
from rescue.linux.sshd_key_login import key_login_refusal
from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import (
    AgentRun,
    linux_args,
    require_root,
    require_tools,
)
from tests.support.rescue_trees import new_key, write_linux_tree

pytestmark = [pytest.mark.root, pytest.mark.sshd]

OLD_KEY_LINE = 'no-pty,command="echo old" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld old@before'


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start sshd on 127.0.0.1 reading keys from one file of the mounted volume."""
    require_tools("sshd", "ssh", "ssh-keygen")
    started = []

    def start(authorized_keys: Path, extra: str = "", first: str = "") -> int:
        process, port = start_sshd(authorized_keys, tmp_path, extra=extra, first=first)
        started.append(process)
        return port

    yield start
    for process in started:
        stop_sshd(process)


def ssh_true(private_key: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-i",
            str(private_key),
            "-p",
            str(port),
            "root@127.0.0.1",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_injected_key_logs_in_and_another_is_refused(
    disks: Disks, tmp_path: Path, run_agent: AgentRun, sshd_factory: Callable[[Path], int]
) -> None:
    require_tools("mkfs.ext4")
    new_private, new_public = new_key(tmp_path, "new")
    other_private, _ = new_key(tmp_path, "other")
    tree = write_linux_tree(
        tmp_path / "tree", files={"home/ec2-user/.ssh/authorized_keys": OLD_KEY_LINE}
    )
    os.chown(tree / "home/ec2-user/.ssh", 1000, 1000)
    device = disks.attach(disks.image("disk", "32M"))
    disks.mkfs("ext4", device, "-d", str(tree))

    code, out = run_agent(*linux_args(new_public), device=device)
    assert code == 0 and out["users"][0]["added"] is True, out

    with disks.mounted(device, "ext4", "ro") as volume:
        authorized_keys = volume / "home/ec2-user/.ssh/authorized_keys"
        assert authorized_keys.read_text() == f"{OLD_KEY_LINE}\n{new_public}\n"  # kept, order kept
        port = sshd_factory(authorized_keys)
        granted = ssh_true(new_private, port)
        assert granted.returncode == 0, granted.stderr
        refused = ssh_true(other_private, port)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_key_present_with_a_forced_command_logs_in_after_the_run(
    tmp_path: Path, sshd_factory: Callable[[Path], int]
) -> None:
    """A key that only ran `exit 142` (a cloud image's root key) gives a shell afterwards."""
    require_root()
    new_private, new_public = new_key(tmp_path, "new")
    forced = f'command="exit 142" {new_public}'
    tree = write_linux_tree(
        tmp_path / "tree", files={"home/ec2-user/.ssh/authorized_keys": forced + "\n"}
    )
    port = sshd_factory(tree / "home/ec2-user/.ssh/authorized_keys")
    assert ssh_true(new_private, port).returncode == 142  # the world before: forced command

    report = inject_key(tree, parse_public_key(new_public))

    assert report["users"][0]["added"] is True, report
    granted = ssh_true(new_private, port)
    assert granted.returncode == 0, granted.stderr


# (directives, whether the key alone logs root in): the agent's verdict must agree with sshd.
# Global lines only come first in sshd's config (first value wins), Match blocks last.
ACCESS_CASES = {
    "pubkey-off": ("PubkeyAuthentication no\n", False),
    "deny-users-wildcard": ("DenyUsers r?ot\n", False),
    "deny-users-other": ("DenyUsers ro admin\n", True),
    "allow-users-other": ("AllowUsers admin\n", False),
    "allow-users-second-line": ("AllowUsers admin\nAllowUsers ro*\n", True),
    "allow-users-negation-is-literal": ("AllowUsers !admin\n", False),
    "allow-users-host-part": ("AllowUsers root@127.0.0.1\n", True),
    "deny-users-host-part-elsewhere": ("DenyUsers root@192.0.2.1\n", True),
    "allow-groups-other": ("AllowGroups nogroup\n", False),
    "deny-groups-any": ("DenyGroups *\n", False),
    "match-user-replaces-allow": ("AllowUsers root\nMatch User root\n  AllowUsers admin\n", False),
    # sshd does not start when no method list can be met: password logins on for these.
    "two-factors": (
        "PasswordAuthentication yes\nAuthenticationMethods publickey,password\n",
        False,
    ),
    "one-list-key-alone": ("AuthenticationMethods publickey,password publickey\n", True),
    "no-key-method": ("PasswordAuthentication yes\nAuthenticationMethods password\n", False),
}


# A Deny pattern whose host part the agent cannot know is a refusal even where sshd lets in.
CONSERVATIVE = {"deny-users-host-part-elsewhere"}


@pytest.mark.parametrize("name", sorted(ACCESS_CASES))
def test_access_verdict_agrees_with_a_real_sshd_login(
    name: str, tmp_path: Path, sshd_factory: Callable[..., int]
) -> None:
    """The agent refuses (or notes a second factor or a host limit) exactly where sshd
    keeps the key out; where it neither refuses nor notes, the key logs in."""
    require_root()
    extra, logs_in = ACCESS_CASES[name]
    private, public = new_key(tmp_path, "new")
    keys = tmp_path / "authorized_keys"
    keys.write_text(public + "\n")
    tree = write_linux_tree(tmp_path / "tree", sshd_config=extra)
    groups = [grp.getgrgid(gid).gr_name for gid in os.getgrouplist("root", 0)]
    with VolumeRoot(tree) as root:
        refusal, notes = key_login_refusal(
            read_directives(root), UserIdentity("root", 0, "/root", groups)
        )
    port = sshd_factory(keys, *(("", extra) if extra.startswith("PasswordAuth") else (extra,)))
    login = ssh_true(private, port)
    assert (login.returncode == 0) == logs_in, login.stderr
    if name in CONSERVATIVE:
        assert refusal, notes
    elif logs_in:
        assert refusal is None, refusal
    else:
        assert refusal or any("sshd also asks for" in note for note in notes), (refusal, notes)
