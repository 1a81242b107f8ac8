"""Write safety on real disks: a full volume, `.ssh` links out of the home, leaked fds and
mounts, other users' files, odd passwd entries. Never a false success, never root by
accident, never the customer's volume left mounted or changed by a failed run."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

import rescue.disk.lvm
import rescue.linux.authorized_keys
import rescue.linux.inroot
import rescue.linux.key_paths
import rescue.linux.key_writer
import rescue.linux.selinux
from rescue import RescueError
from rescue.disk.mounts import mount_volume_root
from rescue.linux.authorized_keys import inject_key
from rescue.linux.keys import parse_public_key
from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import AgentRun, linux_args, require_tools
from tests.support.rescue_trees import new_key, write_linux_tree

pytestmark = [pytest.mark.root]

OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOthe other@x"
BLOCK = 4096


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path)[1]


def ext4_volume(disks: Disks, tree: Path, size: str = "16M") -> str:
    """A whole-disk ext4 volume made from the tree (owners, modes and symlinks kept)."""
    require_tools("mkfs.ext4")
    device = disks.attach(disks.image("disk", size))
    disks.mkfs("ext4", device, "-b", str(BLOCK), "-m", "0", "-d", str(tree))
    return device


def run_rescue(run_agent: AgentRun, device: str, key: str) -> tuple[int, dict[str, Any]]:
    return run_agent(*linux_args(key), device=device)


def by_name(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {user["name"]: user for user in out["users"]}


def own(tree: Path, relative: str, uid: int) -> None:
    os.lchown(tree / relative, uid, uid)


def fill_up(target: Path, leave_blocks: int) -> None:
    """Fill the filesystem until ENOSPC (delayed allocation included), then free blocks."""
    fillers = target / "fill"
    fillers.mkdir()
    with (fillers / "big").open("wb") as big:
        try:
            while True:
                big.write(bytes(1 << 20))
                big.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.sync()
    small: list[Path] = []
    while True:
        path = fillers / f"f{len(small)}"
        try:
            path.write_bytes(bytes(BLOCK))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            path.unlink()
            break
        small.append(path)
    os.sync()
    for path in small[:leave_blocks]:
        path.unlink()
    os.sync()


def test_full_volume_refuses_and_leaves_every_file_as_it_was(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """ENOSPC: no truncated key reported as added, no empty file or `.ssh` left behind.

    One free block and a key line (long comment) that needs two: debian's new `.ssh` takes
    the block, so its new file cannot get data; admin's new file (in an existing `.ssh`) and
    ec2-user's append (its file ends 20 bytes before a block boundary) get only part of the
    line before ENOSPC: os.write reports the short count, and only the next write fails.
    """
    key = key + "-" + "x" * (2 * BLOCK)
    existing = (OTHER + "\n") * ((BLOCK - 20) // (len(OTHER) + 1))
    existing += "#" * (BLOCK - 20 - len(existing) - 1) + "\n"
    assert len(existing) == BLOCK - 20
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("debian", 1001), ("admin", 1002), ("ec2-user", 1000)],
        files={"home/ec2-user/.ssh/authorized_keys": existing},
    )
    (tree / "home/admin/.ssh").mkdir(mode=0o700)
    for path in (".ssh", ".ssh/authorized_keys"):
        own(tree, f"home/ec2-user/{path}", 1000)
    own(tree, "home/admin/.ssh", 1002)
    device = ext4_volume(disks, tree)
    with disks.mounted(device, "ext4") as target:
        fill_up(target, leave_blocks=1)

    code, out = run_rescue(run_agent, device, key)

    assert code == 1 and out["ok"] is False, json.dumps(out)
    assert "full" in out["error"] and "free" in out["error"], out["error"]
    for name in ("debian", "admin", "ec2-user"):
        assert name in out["error"], out["error"]
    with disks.mounted(device, "ext4", "ro") as target:
        assert (target / "home/ec2-user/.ssh/authorized_keys").read_text() == existing
        assert not (target / "home/debian/.ssh").exists()  # no empty .ssh left behind
        assert list((target / "home/admin/.ssh").iterdir()) == []  # no empty file either
    subprocess.run(["e2fsck", "-fn", device], check=True, capture_output=True)


def test_full_volume_leaves_a_restricted_key_file_as_it_was(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """The key is there only with a forced command, so a plain line goes right before it:
    on a full volume that insert fails (the file's growth is written first, and only part
    of it fits), and the file is left byte for byte as it was, not half shifted."""
    long_key = key + "-" + "x" * (2 * BLOCK)
    restricted = f'command="echo Please login as ec2-user;exit 142" {key}\n'
    filler = (OTHER + "\n") * ((BLOCK - 20 - len(restricted)) // (len(OTHER) + 1))
    existing = filler + "#" * (BLOCK - 20 - len(filler) - len(restricted) - 1) + "\n" + restricted
    assert len(existing) == BLOCK - 20
    tree = write_linux_tree(
        tmp_path / "tree", files={"home/ec2-user/.ssh/authorized_keys": existing}
    )
    device = ext4_volume(disks, tree)
    with disks.mounted(device, "ext4") as target:
        fill_up(target, leave_blocks=1)
        inode = (target / "home/ec2-user/.ssh/authorized_keys").stat().st_ino

    code, out = run_rescue(run_agent, device, long_key)

    assert code == 1 and out["ok"] is False, json.dumps(out)
    assert "full" in out["error"] and "ec2-user" in out["error"], out["error"]
    with disks.mounted(device, "ext4", "ro") as target:
        keys = target / "home/ec2-user/.ssh/authorized_keys"
        assert keys.read_text() == existing
        assert keys.stat().st_ino == inode
    subprocess.run(["e2fsck", "-fn", device], check=True, capture_output=True)


def test_insert_before_a_restricted_key_is_old_or_new_after_a_failure_at_any_step(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every os call of the repair fails once in turn; the key file (whose key line carries
    `restrict`, so the plain one is inserted before it) is then either untouched, byte for
    byte and mode, or has the plain line right before the restricted one: never half shifted.
    Its group-writable mode makes the fchmod after the write one of the steps."""
    restricted = f"restrict {key}\n"
    original = f"# keys\n{OTHER}\n{restricted}{OTHER.replace('Other', 'Third')}"
    expected = f"# keys\n{OTHER}\n{key}\n{restricted}{OTHER.replace('Other', 'Third')}\n"
    tree = write_linux_tree(tmp_path / "tree", files={"home/ec2-user/.ssh/authorized_keys": ""})
    keys = tree / "home/ec2-user/.ssh/authorized_keys"
    public_key = parse_public_key(key)
    fail_at = 0
    restored: set[str] = set()  # the os calls whose failure left the file as it was
    while True:
        fail_at += 1
        keys.write_text(original)
        keys.chmod(0o664)
        inode = keys.stat().st_ino
        before = open_fds()
        faulty = FaultyOs(fail_at, lambda name: OSError(errno.EIO, f"injected in os.{name}"))
        with faulty_os(monkeypatch, faulty), suppress(RescueError, OSError):
            inject_key(tree, public_key)
        assert open_fds() == before, f"fd leaked after a failure in os.{faulty.failed}"
        assert keys.stat().st_ino == inode
        if faulty.failed is None:
            assert keys.read_text() == expected
            assert keys.stat().st_mode & 0o777 == 0o644
            break
        where = f"after a failure in os.{faulty.failed} (call {fail_at})"
        # A failure after the write (reading os-release for the report) leaves it done.
        state = (keys.read_text(), keys.stat().st_mode & 0o777)
        assert state in ((original, 0o664), (expected, 0o644)), where
        if state[0] == original:
            restored.add(faulty.failed)
    # The walk went through the write itself: each of its steps failed and was undone.
    assert {"pwrite", "fsync", "pread", "fchmod"} <= restored, sorted(restored)


def test_ssh_dir_linked_out_of_the_home_is_refused_naming_the_link(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """`.ssh -> /root/.ssh` would give root (PermitRootLogin prohibit-password allows keys);
    `.ssh -> /etc/cron.d` would plant a user-owned file in a system directory. sshd's
    StrictModes checks each directory from the file up to the home (auth2-pubkeyfile.c,
    safe_path); the agent only writes where every directory lies inside the home."""
    root_keys = 'command="echo Please login as the user \\"ec2-user\\";exit 142" ' + OTHER + "\n"
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("ec2-user", 1000), ("ubuntu", 1001), ("admin", 1002)],
        sshd_config="PermitRootLogin prohibit-password\n",
        files={
            "root/.ssh/authorized_keys": root_keys,
            "etc/cron.d/0hourly": "01 * * * * root run-parts /etc/cron.hourly\n",
            "home/admin/.config/ssh/authorized_keys": OTHER + "\n",
        },
    )
    (tree / "home/ec2-user/.ssh").symlink_to("/root/.ssh")
    (tree / "home/ubuntu/.ssh").symlink_to("../../etc/cron.d")
    (tree / "home/admin/.ssh").symlink_to(".config/ssh")  # inside the home: fine
    for path in (".config", ".config/ssh", ".config/ssh/authorized_keys"):
        own(tree, f"home/admin/{path}", 1002)
    device = ext4_volume(disks, tree)

    code, out = run_rescue(run_agent, device, key)

    assert code == 0, out
    users = by_name(out)
    assert users["ec2-user"]["added"] is False
    assert "/home/ec2-user/.ssh" in users["ec2-user"]["refused"]
    assert "/root/.ssh" in users["ec2-user"]["refused"]
    assert users["ubuntu"]["added"] is False
    assert "/home/ubuntu/.ssh" in users["ubuntu"]["refused"]
    assert "/etc/cron.d" in users["ubuntu"]["refused"]
    assert users["admin"]["added"] is True
    assert users["admin"]["written"] == "/home/admin/.config/ssh/authorized_keys"
    assert out["key_users"] == ["admin"]
    with disks.mounted(device, "ext4", "ro") as target:
        assert (target / "root/.ssh/authorized_keys").read_text() == root_keys
        assert sorted(p.name for p in (target / "etc/cron.d").iterdir()) == ["0hourly"]
        admin_keys = target / "home/admin/.config/ssh/authorized_keys"
        assert admin_keys.read_text() == OTHER + "\n" + key + "\n"
        assert admin_keys.stat().st_uid == 1002


def test_bad_uids_are_skipped_and_the_volume_is_released(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """uid 4294967296 made fchown raise with a directory fd open: the unmount failed and the
    customer's volume stayed mounted on the helper. `²` passes str.isdigit() but not int()."""
    tree = write_linux_tree(tmp_path / "tree", users=[("admin", 1002)])
    with (tree / "etc/passwd").open("a") as passwd:
        passwd.write("ec2-user:x:4294967296:1000::/home/ec2-user:/bin/bash\n")
        passwd.write("ubuntu:x:²:1001::/home/ubuntu:/bin/bash\n")
        passwd.write("debian:x:1003:-1::/home/debian:/bin/bash\n")
    for name in ("ec2-user", "ubuntu", "debian"):
        (tree / "home" / name).mkdir()
    device = ext4_volume(disks, tree)

    code, out = run_rescue(run_agent, device, key)

    assert code == 0, out
    assert out["key_users"] == ["admin"]
    skipped = " / ".join(out["passwd_skipped"])
    assert "ec2-user" in skipped and "4294967296" in skipped
    assert "ubuntu" in skipped and "²" in skipped
    assert "debian" in skipped and "-1" in skipped
    assert device not in Path("/proc/mounts").read_text()
    with disks.mounted(device, "ext4", "ro") as target:
        assert not (target / "home/ec2-user/.ssh").exists()
        assert (target / "home/admin/.ssh/authorized_keys").read_text() == key + "\n"


def test_another_users_file_keeps_its_owner(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """Two users share a home; the key file is bob's. sshd's StrictModes accepts a key file
    (and each directory up to the home) only when owned by the user or root, so alice cannot
    use it: she is refused, and bob keeps his file (it used to be re-owned to alice)."""
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("ec2-user", 1000)],
        files={
            "srv/shared/.ssh/authorized_keys": OTHER + "\n",
            "home/ec2-user/.ssh/authorized_keys": OTHER + "\n",
        },
    )
    with (tree / "etc/passwd").open("a") as passwd:
        passwd.write("alice:x:1001:1001::/srv/shared:/bin/bash\n")
        passwd.write("bob:x:1002:1002::/srv/shared:/bin/bash\n")
    for path in ("", "/.ssh", "/.ssh/authorized_keys"):
        own(tree, f"srv/shared{path}", 1002)
    own(tree, "home/ec2-user/.ssh", 1000)  # ec2-user's file is root's: sshd accepts that
    device = ext4_volume(disks, tree)

    code, out = run_rescue(run_agent, device, key)

    assert code == 0, out
    users = by_name(out)
    assert users["alice"]["added"] is False
    assert "bob" in users["alice"]["refused"] and "StrictModes" in users["alice"]["refused"]
    assert users["bob"]["added"] is True and users["ec2-user"]["added"] is True
    assert out["key_users"] == ["ec2-user", "bob"]
    with disks.mounted(device, "ext4", "ro") as target:
        shared = target / "srv/shared/.ssh/authorized_keys"
        assert shared.read_text() == OTHER + "\n" + key + "\n"
        assert shared.stat().st_uid == 1002
        assert (target / "home/ec2-user/.ssh/authorized_keys").stat().st_uid == 0


def test_first_passwd_entry_wins_and_empty_shell_is_sh(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """sshd looks a name up with getpwnam, which returns the first entry; an empty shell
    field means /bin/sh (passwd(5)), so that user logs in."""
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("ec2-user", 1000)],
        files={"home/dev/.ssh/authorized_keys": OTHER + "\n", "home/other/.keep": ""},
    )
    with (tree / "etc/passwd").open("a") as passwd:
        passwd.write("ec2-user:x:1005:1005::/home/other:/bin/bash\n")
        passwd.write("dev:x:1001:1001::/home/dev:\n")
    for path in ("", "/.ssh", "/.ssh/authorized_keys"):
        own(tree, f"home/dev{path}", 1001)
    device = ext4_volume(disks, tree)

    code, out = run_rescue(run_agent, device, key)

    assert code == 0, out
    assert [user["name"] for user in out["users"]] == ["ec2-user", "dev"]
    assert all(user["added"] for user in out["users"])
    with disks.mounted(device, "ext4", "ro") as target:
        assert (target / "home/ec2-user/.ssh/authorized_keys").read_text() == key + "\n"
        assert not (target / "home/other/.ssh").exists()
        assert (target / "home/dev/.ssh/authorized_keys").read_text() == OTHER + "\n" + key + "\n"


class FaultyOs:
    """The os module as rescue.linux.authorized_keys and rescue.linux.inroot see it, failing
    its Nth call."""

    NEVER_FAIL = frozenset({"close", "fdopen", "fspath", "fsencode", "fsdecode", "strerror"})

    def __init__(self, fail_at: int, error: Callable[[str], BaseException]) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.error = error
        self.failed: str | None = None

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name in self.NEVER_FAIL or isinstance(real, type) or not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.fail_at:
                self.failed = name
                raise self.error(name)
            return real(*args, **kwargs)

        return call


def open_fds() -> list[tuple[str, str]]:
    fds = []
    for entry in Path("/proc/self/fd").iterdir():
        try:
            fds.append((entry.name, str(entry.readlink())))
        except FileNotFoundError:
            continue  # the listing's own fd
    return sorted(fds)


@contextmanager
def faulty_os(monkeypatch: pytest.MonkeyPatch, faulty: FaultyOs, *modules: Any) -> Iterator[None]:
    with monkeypatch.context() as patch:
        linux = rescue.linux
        agent = (
            linux.authorized_keys,
            linux.key_paths,
            linux.key_writer,
            linux.selinux,
            linux.inroot,
        )
        for module in (*agent, *modules):
            patch.setattr(module, "os", faulty)
        yield


def test_a_failure_at_any_step_leaks_no_fd_and_leaves_nothing_mounted(
    disks: Disks, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every os call of the repair fails once in turn (an I/O error, then an error that is no
    OSError, as fchown's OverflowError was); after each, no fd is left open and the volume
    unmounts. The repair covers a new `.ssh`, an append, and a refused user."""
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("ec2-user", 1000), ("dev", 1001)],
        files={"home/dev/.ssh/authorized_keys": OTHER + "\n"},
    )
    device = ext4_volume(disks, tree)
    public_key = parse_public_key(key)
    errors: list[Callable[[str], BaseException]] = [
        lambda name: OSError(errno.EIO, f"injected I/O error in os.{name}"),
        lambda name: OverflowError(f"injected in os.{name}"),
    ]
    steps = 0
    with mount_volume_root(Path(device), "linux") as mounted:
        home = mounted.path / "home"
        for error in errors:
            fail_at = 1
            while True:
                shutil.rmtree(home / "ec2-user/.ssh", ignore_errors=True)
                (home / "dev/.ssh/authorized_keys").write_text(OTHER + "\n")
                before = open_fds()
                faulty = FaultyOs(fail_at, error)
                with faulty_os(monkeypatch, faulty), suppress(RescueError, OSError, OverflowError):
                    inject_key(mounted.path, public_key)
                assert open_fds() == before, f"fd leaked after a failure in os.{faulty.failed}"
                if faulty.failed is None:
                    break
                fail_at += 1
            steps = max(steps, fail_at)
    assert steps > 20  # the walk really went through the repair's calls
    assert str(mounted.path) not in Path("/proc/self/mountinfo").read_text()
    assert device not in Path("/proc/mounts").read_text()
